"""django-q2 task entry points: thin wrappers that bind the request id and delegate."""

from __future__ import annotations

from config.request_id import bound
from emails.services import email_send, emails_sweep


def send(email_id: str, request_id: str | None = None) -> str | None:
    """One send attempt; logs carry the id of the request that queued the email."""
    with bound(request_id):
        return email_send(email_id=email_id)


def sweep() -> dict:
    """Scheduled: queue due emails again, settle ones whose worker died."""
    with bound(None):
        return emails_sweep()
