"""django-q2 task entry points: thin wrappers that bind the request id and delegate."""

from __future__ import annotations

from config.request_id import bound
from webhooks.processing import webhook_process, webhook_process_batch, webhook_sweep
from webhooks.retention import webhook_bodies_purge


def process_events(events: list[list]) -> list[str | None]:
    """One processing attempt for each [event pk, request id] of a batch (see webhooks.queue
    and webhooks.processing); each event logs under its request id, one without under the
    task's own."""
    with bound(None):
        return [None if status is None else str(status)
                for status in webhook_process_batch([(pk, request_id) for pk, request_id in events])]


def process_event(event_pk: int, request_id: str | None = None) -> str | None:
    """One processing attempt; logs carry the id of the request that delivered the event.
    (Tasks of one event, as queued by earlier releases.)"""
    with bound(request_id):
        return webhook_process(event_pk=event_pk)


def sweep() -> int:
    """Scheduled: enqueue events left behind (relay down, task lost) and due retries."""
    with bound(None):
        return len(webhook_sweep())


def purge_bodies() -> int:
    """Scheduled: retention of raw bodies."""
    with bound(None):
        return webhook_bodies_purge()
