"""django-q2 task entry points: thin wrappers that bind the request id and delegate."""

from __future__ import annotations

from config.request_id import bound
from webhooks.processing import webhook_process, webhook_sweep
from webhooks.retention import webhook_bodies_purge


def process_event(event_pk: int, request_id: str | None = None) -> str | None:
    """One processing attempt; logs carry the id of the request that delivered the event."""
    with bound(request_id):
        return webhook_process(event_pk=event_pk)


def sweep() -> int:
    """Scheduled: re-enqueue lost and due events."""
    with bound(None):
        return len(webhook_sweep())


def purge_bodies() -> int:
    """Scheduled: retention of raw bodies."""
    with bound(None):
        return webhook_bodies_purge()
