"""Retention: drop the raw bodies of old finished events; the rows (and history) stay."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from webhooks.conf import webhook_settings
from webhooks.models import FINAL_STATUSES, WebhookEvent


def webhook_bodies_purge(*, now: datetime | None = None, older_than: timedelta | None = None) -> int:
    """Empty raw_body and payload of processed/ignored events finished before the
    retention (WEBHOOK_BODY_RETENTION_DAYS); returns how many were purged.
    Failed and dead events keep their bodies: they may still be replayed."""
    now = now or timezone.now()
    older_than = older_than if older_than is not None else timedelta(days=webhook_settings.BODY_RETENTION_DAYS)
    return (WebhookEvent.objects
            .filter(status__in=FINAL_STATUSES, processed_at__lt=now - older_than, body_purged_at__isnull=True)
            .update(raw_body=b"", payload=None, body_purged_at=now))
