"""Cursor pages of emails: the charges' pagination (newest first, strict cursors, bounded `limit`)."""

from payments.pagination import MAX_LIMIT, ChargeCursorPagination


class EmailCursorPagination(ChargeCursorPagination):
    pass


__all__ = ["MAX_LIMIT", "EmailCursorPagination"]
