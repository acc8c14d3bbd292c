"""Cursor pagination for charge lists: newest first, stable under inserts, `limit` bounded."""

from base64 import b64decode
from datetime import UTC
from urllib import parse

from django.utils.dateparse import parse_datetime
from rest_framework import pagination
from rest_framework.exceptions import ValidationError

MAX_LIMIT = 100


class ChargeCursorPagination(pagination.CursorPagination):
    ordering = ("-created", "-id")
    page_size = 20
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    invalid_limit = f"Must be an integer from 1 to {MAX_LIMIT}."
    invalid_cursor = "Invalid cursor; use the `next` or `previous` link as is."

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        # isascii: str.isdigit() also accepts "²", which int() refuses.
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 3 or not 1 <= int(raw) <= MAX_LIMIT:
            raise ValidationError({"limit": [self.invalid_limit]})
        return int(raw)

    def decode_cursor(self, request):
        """A cursor this API did not issue is a 400 naming `cursor`, not a missing page and never
        a query whose position the database cannot compare (a 500 on PostgreSQL)."""
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            return self.parse_cursor(encoded)
        except (TypeError, ValueError, OverflowError):
            raise ValidationError({"cursor": [self.invalid_cursor]}) from None

    def parse_cursor(self, encoded: str) -> pagination.Cursor:
        """The inverse of DRF's `encode_cursor`, strictly: ValueError for anything it would not
        write (DRF's own decoding lets through any position, and caps or coerces the rest)."""
        text = b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
        tokens = parse.parse_qs(text, keep_blank_values=True, strict_parsing=True)
        if not set(tokens) <= {"o", "r", "p"} or any(len(values) != 1 for values in tokens.values()):
            raise ValueError("unknown or repeated cursor field")
        offset = tokens.get("o", ["0"])[0]
        if not (offset.isascii() and offset.isdigit()) or len(offset) > 4 or int(offset) > self.offset_cutoff:
            raise ValueError("cursor offset out of range")
        reverse = tokens.get("r", ["0"])[0]
        if reverse not in ("0", "1"):
            raise ValueError("cursor direction is not 0 or 1")
        position = tokens.get("p", [None])[0]
        if position is not None:
            check_position(position)
        return pagination.Cursor(offset=int(offset), reverse=reverse == "1", position=position)


def check_position(position: str) -> None:
    """A position is a charge's `created` exactly as `str()` wrote it (an aware datetime) and
    one the database can compare: ValueError or OverflowError otherwise."""
    when = parse_datetime(position)  # None when not a datetime; ValueError when a part is out of range
    # Exactly as written: fromisoformat also reads other ISO forms, and stops at a NUL.
    if when is None or when.tzinfo is None or str(when) != position:
        raise ValueError("cursor position is not an aware datetime as str() writes it")
    when.astimezone(UTC)  # OverflowError near year 1 or 9999, as the database adapter would raise
