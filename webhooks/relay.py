"""The relay: stored events to the task queue (a transactional outbox).

The intake only INSERTs; this moves `received` rows whose `enqueued_at` is unset to
django-q2 in batches. Each pass claims rows with SELECT ... FOR UPDATE SKIP LOCKED, so
several relays never hand on the same row, marks them enqueued and enqueues their tasks
in one transaction: a broker error or a crash before the commit leaves them unclaimed
for the next pass. The sweeper is the backstop when no relay runs (webhooks.processing).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
from django_q.brokers import get_broker

from webhooks.conf import webhook_settings
from webhooks.models import EventStatus, WebhookEvent
from webhooks.queue import enqueue_events

logger = logging.getLogger(__name__)

# After an error the relay waits this long, doubling per failed pass up to the cap.
ERROR_BACKOFF_SECONDS = (0.5, 10.0)


def unrelayed():
    """Events stored or replayed and not yet handed to the task queue."""
    return WebhookEvent.objects.filter(status=EventStatus.RECEIVED, enqueued_at__isnull=True)


def webhook_relay_once(*, broker=None, limit: int | None = None, now: datetime | None = None) -> list[int]:
    """One pass: claim up to `limit` (WEBHOOK_RELAY_BATCH) unrelayed events, oldest first,
    mark them enqueued and enqueue their tasks; returns their ids."""
    limit = limit or webhook_settings.RELAY_BATCH
    if not unrelayed().exists():
        return []  # idle: no write transaction (on SQLite it would take the write lock)
    with transaction.atomic():
        rows = list(unrelayed().select_for_update(skip_locked=True).order_by("pk")
                    .values_list("pk", "request_id")[:limit])
        if rows:
            WebhookEvent.objects.filter(pk__in=[pk for pk, _ in rows]).update(enqueued_at=now or timezone.now())
            enqueue_events(rows, broker=broker)
    return [pk for pk, _ in rows]


def webhook_relay_run(stop: threading.Event, *, poll: float | None = None, limit: int | None = None) -> None:
    """Relay until `stop` is set: a full batch is followed at once by the next pass, else
    the relay waits `poll` seconds (WEBHOOK_RELAY_POLL_SECONDS). An error (database or
    broker down) is logged and the pass retried with a growing wait; the events wait in
    their rows meanwhile."""
    poll = webhook_settings.RELAY_POLL_SECONDS if poll is None else poll
    limit = limit or webhook_settings.RELAY_BATCH
    broker = get_broker()  # one connection for the relay's life, not one per task
    failures = 0
    while not stop.is_set():
        try:
            relayed = webhook_relay_once(broker=broker, limit=limit)
        except Exception:  # noqa: BLE001 - the relay outlives outages; the rows wait
            failures += 1
            wait = min(ERROR_BACKOFF_SECONDS[0] * 2 ** (failures - 1), ERROR_BACKOFF_SECONDS[1])
            logger.exception("webhook relay pass failed; retrying", extra={"retry_in": wait})
            connection.close()  # a broken connection is opened anew on the next pass
            stop.wait(wait)
            continue
        if failures:
            logger.info("webhook relay recovered", extra={"failed_passes": failures})
            failures = 0
        if len(relayed) < limit:
            stop.wait(poll)
