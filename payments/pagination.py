"""Cursor pagination for charge lists: newest first, stable under inserts, `limit` bounded."""

from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError

MAX_LIMIT = 100


class ChargeCursorPagination(pagination.CursorPagination):
    ordering = ("-created", "-id")
    page_size = 20
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    invalid_limit = f"Must be an integer from 1 to {MAX_LIMIT}."

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        # isascii: str.isdigit() also accepts "²", which int() refuses.
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 3 or not 1 <= int(raw) <= MAX_LIMIT:
            raise ValidationError({"limit": [self.invalid_limit]})
        return int(raw)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            # A bad cursor is a bad request, not a missing page.
            raise ValidationError({"cursor": ["Invalid cursor; use the `next` or `previous` link as is."]}) from None
