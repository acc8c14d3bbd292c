"""Processing one event: claim it, run its handler, record the outcome (retry, dead).

Phases, each its own transaction, so a worker dying anywhere leaves a row the sweeper
can pick up again: (1) claim: lock the row, check it is due, mark it `processing` and
count the attempt; (2) run the handler and mark `processed` atomically, so the handler's
writes and the mark commit together or not at all; (3) on error, record it and either
schedule the retry (`failed` + next_attempt_at) or give up (`dead`).
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webhooks import metrics
from webhooks.conf import webhook_settings
from webhooks.models import EventStatus, WebhookEvent
from webhooks.registry import Event, handler_for

logger = logging.getLogger(__name__)


class _LostClaim(Exception):
    """Another worker took the event over (ours was considered dead): undo our work."""


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after the `attempts`-th failed attempt."""
    base, cap = webhook_settings.RETRY_BASE_SECONDS, webhook_settings.RETRY_MAX_SECONDS
    return timedelta(seconds=min(cap, base * 2 ** max(attempts - 1, 0)))


def _claimable(now: datetime) -> Q:
    """Rows a worker may start an attempt on at `now`."""
    stale = now - timedelta(seconds=webhook_settings.STALE_PROCESSING_SECONDS)
    return (Q(status=EventStatus.RECEIVED)
            | Q(status=EventStatus.FAILED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            | Q(status=EventStatus.PROCESSING, claimed_at__lt=stale))


def _claim(event_pk: int, now: datetime) -> WebhookEvent | None:
    max_attempts = webhook_settings.MAX_ATTEMPTS
    with transaction.atomic():
        # The row lock makes concurrent tasks for one event queue up here; the loser then
        # sees `processing` and leaves. (SQLite: the IMMEDIATE transaction serialises.)
        # The provider comes along in the same query, unlocked (`of`: other workers need it).
        event = (WebhookEvent.objects.select_for_update(of=("self",)).select_related("provider")
                 .filter(_claimable(now), pk=event_pk).first())
        if event is None:
            return None
        if event.attempts >= max_attempts:
            # Its last attempt's worker died mid-way: no attempts left.
            event.status = EventStatus.DEAD
            event.last_error = event.last_error or "worker lost during the last attempt"
            event.save(update_fields=["status", "last_error"])
            metrics.processing_total.labels(_slug(event), "dead").inc()
            return None
        event.status = EventStatus.PROCESSING
        event.attempts += 1
        event.claimed_at = now
        event.next_attempt_at = None
        event.save(update_fields=["status", "attempts", "claimed_at", "next_attempt_at"])
    return event


def _slug(event: WebhookEvent) -> str:
    return event.provider.slug


def webhook_process(*, event_pk: int, now: datetime | None = None) -> str | None:
    """Run one processing attempt of an event; returns its new status, or None when the
    event was not due (already done, being processed by another worker, or not yet).
    `now` (tests inject it) is the attempt's clock: due checks, claim and finish times."""
    clock = (lambda: now) if now is not None else timezone.now
    now = clock()
    event = _claim(event_pk, now)
    if event is None:
        return None
    provider = event.provider
    mine = WebhookEvent.objects.filter(pk=event.pk, status=EventStatus.PROCESSING, claimed_at=now)
    handler = handler_for(provider.kind, event.type)
    if handler is None:
        mine.update(status=EventStatus.IGNORED, processed_at=clock(), last_error="", last_traceback="")
        metrics.processing_total.labels(provider.slug, "ignored").inc()
        return EventStatus.IGNORED

    started = time.perf_counter()
    try:
        if event.body_purged_at is not None:
            raise ValueError("the event's body was purged by retention; it cannot be processed")
        view = Event(pk=event.pk, provider_id=provider.pk, provider_slug=provider.slug, kind=provider.kind,
                     event_id=event.event_id, type=event.type, payload=event.payload)
        with transaction.atomic():
            result = handler(view)
            done = {"status": EventStatus.PROCESSED, "processed_at": clock(), "last_error": "",
                    "last_traceback": ""}
            if result is not None and result.subject_id:
                done.update(subject_type=result.subject_type, subject_id=str(result.subject_id))
            if not mine.update(**done):
                raise _LostClaim()
    except _LostClaim:
        logger.warning("webhook event taken over by another worker", extra={"event": event.pk})
        return None
    except Exception as err:  # noqa: BLE001 - any handler error fails the attempt, recorded
        return _record_failure(event, err, now, mine)
    finally:
        metrics.processing_seconds.labels(provider.slug).observe(time.perf_counter() - started)
    metrics.processing_total.labels(provider.slug, "processed").inc()
    return EventStatus.PROCESSED


def _record_failure(event: WebhookEvent, err: Exception, now: datetime, mine) -> str:
    error = f"{type(err).__name__}: {err}"[:2000]
    trace = "".join(traceback.format_exception(err))[-20000:]
    if event.attempts >= webhook_settings.MAX_ATTEMPTS:
        status, next_at = EventStatus.DEAD, None
    else:
        status, next_at = EventStatus.FAILED, now + retry_delay(event.attempts)
    mine.update(status=status, next_attempt_at=next_at, last_error=error, last_traceback=trace)
    metrics.processing_total.labels(event.provider.slug, str(status)).inc()
    logger.warning("webhook processing failed", extra={"event": event.pk, "attempt": event.attempts,
                                                       "status": str(status), "error": type(err).__name__})
    return status


def webhook_sweep(*, now: datetime | None = None) -> list[int]:
    """Enqueue events the relay or the queue left behind, or due for a retry; returns their ids.

    Left behind: `received` and never handed on within WEBHOOK_STALE_RECEIVED_SECONDS of
    being stored or replayed (no relay running), or handed on that long ago and not picked
    up (a task lost with a worker or the broker); `processing` for longer than
    WEBHOOK_STALE_PROCESSING_SECONDS (a dead worker). Due: `failed` whose next_attempt_at
    has passed. Rows another transaction holds (the relay, a worker's claim) are skipped.
    """
    from webhooks.queue import enqueue_events

    now = now or timezone.now()
    stale_received = now - timedelta(seconds=webhook_settings.STALE_RECEIVED_SECONDS)
    lost_processing = now - timedelta(seconds=webhook_settings.STALE_PROCESSING_SECONDS)
    never_relayed = (Q(status=EventStatus.RECEIVED, enqueued_at__isnull=True, received_at__lt=stale_received)
                     & (Q(replayed_at__isnull=True) | Q(replayed_at__lt=stale_received)))
    wanted = (never_relayed
              | Q(status=EventStatus.RECEIVED, enqueued_at__lt=stale_received)
              | Q(status=EventStatus.PROCESSING, claimed_at__lt=lost_processing)
              | Q(status=EventStatus.FAILED, next_attempt_at__lte=now))
    with transaction.atomic():
        rows = list(WebhookEvent.objects.select_for_update(skip_locked=True).filter(wanted).order_by("pk")
                    .values_list("pk", "request_id")[: webhook_settings.SWEEP_BATCH])
        if rows:
            WebhookEvent.objects.filter(pk__in=[pk for pk, _ in rows]).update(enqueued_at=now)
            enqueue_events(rows)
    if rows:
        logger.info("webhook sweeper enqueued events", extra={"count": len(rows)})
    return [pk for pk, _ in rows]
