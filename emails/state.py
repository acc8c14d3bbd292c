"""Moving an email's status forward, never backwards, with a history row per change."""

from __future__ import annotations

from django.db import transaction

from emails.models import STATUS_RANK, Email, EmailStatus, EmailStatusChange


def is_progress(current: str, new: str) -> bool:
    """Whether `new` is further along than `current` (equal ranks are not: first one wins)."""
    return STATUS_RANK[EmailStatus(new)] > STATUS_RANK[EmailStatus(current)]


def record_change(email: Email, previous: str, source: str) -> None:
    EmailStatusChange.objects.create(email=email, from_status=previous, to_status=email.status, source=source[:200])


def email_apply_status(*, email_id: str, status: str, source: str, **fields) -> tuple[Email, bool]:
    """Move an email to `status` if that is progress, setting `fields` with it; returns
    (email, changed). Idempotent: the same or an older status again changes nothing, so event
    handlers, late send outcomes and replays may run in any order."""
    with transaction.atomic():
        email = Email.objects.select_for_update().get(pk=email_id)
        if not is_progress(email.status, status):
            return email, False
        previous = email.status
        email.status = status
        for name, value in fields.items():
            setattr(email, name, value)
        email.save()
        record_change(email, previous, source)
        return email, True
