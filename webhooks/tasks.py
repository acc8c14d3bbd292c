"""django-q2 task entry points: thin wrappers that bind the request id and delegate."""

from __future__ import annotations

import logging

from config.request_id import bound
from webhooks.processing import webhook_process, webhook_sweep
from webhooks.retention import webhook_bodies_purge

logger = logging.getLogger(__name__)


def process_events(events: list[list]) -> list[str | None]:
    """One processing attempt for each [event pk, request id] of a batch (see
    webhooks.queue), each on its own: one that fails, even unexpectedly, leaves the
    others to run (and itself to a retry or the sweeper)."""
    results = []
    for event_pk, request_id in events:
        with bound(request_id):
            try:
                status = webhook_process(event_pk=event_pk)
            except Exception:  # noqa: BLE001 - recorded; the sweeper retries a stuck event
                logger.exception("webhook processing crashed", extra={"event": event_pk})
                status = None
        results.append(None if status is None else str(status))
    return results


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
