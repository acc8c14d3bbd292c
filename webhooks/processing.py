"""Processing a task's events: claim them, run their handlers, record the outcomes.

Two transactions per task, whatever its number of events (a commit is most of an
event's cost), so a worker dying anywhere leaves rows the sweeper can pick up again:
(1) claim: lock the rows, keep those that are due, mark them `processing` and count the
attempt; (2) each handler runs in a savepoint of one transaction with its event's
`processed` mark, so a handler's writes and that mark commit together or not at all; a
handler that raises rolls back to its savepoint only, and its failure is recorded in
the same transaction: the retry (`failed` + next_attempt_at), or `dead`.

A worker dying in (2) takes the whole batch's work with it: its rows stay `processing`
until the sweeper hands each on in a task of its own, so an event that kills its worker
costs its neighbours one attempt, and itself all of its attempts until it is `dead`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config.request_id import bound
from webhooks import metrics
from webhooks.conf import webhook_settings
from webhooks.models import EventStatus, WebhookEvent
from webhooks.registry import Event, handler_for

logger = logging.getLogger(__name__)

Item = tuple[int, str | None]  # (event pk, id of the request that delivered it)


class _LostClaim(Exception):
    """Another worker took the event over (ours was considered dead): undo our work."""


@dataclass(frozen=True)
class _Outcome:
    status: str | None  # None: another worker took the event over
    error: Exception | None = None


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


def _claim(pks: Sequence[int], now: datetime) -> dict[int, WebhookEvent]:
    """Start an attempt on each due event of `pks`, in one transaction; returns them by pk."""
    with transaction.atomic():
        # Row locks make a task holding the same events wait here until this claim commits,
        # then find them `processing` and leave them (SQLite: the IMMEDIATE transaction
        # serialises). Waiting, not SKIP LOCKED: the relay holds its rows until it commits,
        # and a worker can pick the task up before that. In pk order, like the relay and
        # the sweeper, so two lockers never wait on each other. The provider comes along
        # unlocked (`of`: other workers need it).
        due = list(WebhookEvent.objects.select_for_update(of=("self",)).select_related("provider")
                   .filter(_claimable(now), pk__in=pks).order_by("pk"))
        spent = [event for event in due if event.attempts >= webhook_settings.MAX_ATTEMPTS]
        for event in spent:
            # Its last attempt's worker died mid-way: no attempts left.
            event.status = EventStatus.DEAD
            event.last_error = event.last_error or "worker lost during the last attempt"
            event.save(update_fields=["status", "last_error"])
        claimed = [event for event in due if event.attempts < webhook_settings.MAX_ATTEMPTS]
        if claimed:
            WebhookEvent.objects.filter(pk__in=[event.pk for event in claimed]).update(
                status=EventStatus.PROCESSING, attempts=F("attempts") + 1, claimed_at=now, next_attempt_at=None)
    for event in spent:
        metrics.processing_total.labels(event.provider.slug, "dead").inc()
    for event in claimed:
        event.status, event.attempts, event.claimed_at = EventStatus.PROCESSING, event.attempts + 1, now
    return {event.pk: event for event in claimed}


def webhook_process(*, event_pk: int, now: datetime | None = None) -> str | None:
    """One processing attempt of an event (a batch of one); returns its new status, or
    None when it was not due (already done, being processed by another worker, or not
    yet)."""
    [status] = webhook_process_batch([(event_pk, None)], now=now)
    return status


def webhook_process_batch(events: Sequence[Item], *, now: datetime | None = None) -> list[str | None]:
    """One processing attempt of each event of a task; returns their new statuses in
    order, None for those not due (or whose attempt crashed outside its handler: logged,
    left `processing` for the sweeper). Each event's logs carry its request id (without
    one, the caller's). `now` (tests inject it) is the clock: due checks, claim and
    finish times."""
    clock = (lambda: now) if now is not None else timezone.now
    now = clock()
    request_ids = dict(events)  # one attempt per event, even if listed twice
    claimed = _claim(list(request_ids), now)
    outcomes: dict[int, _Outcome] = {}
    if len(claimed) > 1:
        try:
            with transaction.atomic():
                for pk, event in claimed.items():
                    with _logging_as(request_ids[pk]):
                        outcomes[pk] = _attempt(event, now, clock)
        except Exception:  # noqa: BLE001 - e.g. a deferred constraint failing the commit
            # The handlers' work was rolled back and the claims are still ours: run each
            # event in a transaction of its own, so that one cannot fail the others.
            logger.warning("webhook batch failed as a whole; running its events one by one", exc_info=True,
                           extra={"events": list(claimed)})
            outcomes = {}
    for pk, event in claimed.items():
        with _logging_as(request_ids[pk]):
            if pk not in outcomes:
                try:
                    outcomes[pk] = _attempt(event, now, clock)
                except Exception:  # noqa: BLE001 - the others still run; the sweeper retries this one
                    logger.exception("webhook processing crashed", extra={"event": pk})
                    continue
            _report(event, outcomes[pk])
    return [outcomes[pk].status if pk in outcomes else None for pk, _ in events]


def _logging_as(request_id: str | None):
    return bound(request_id) if request_id else contextlib.nullcontext()


def _attempt(event: WebhookEvent, now: datetime, clock: Callable[[], datetime]) -> _Outcome:
    """Run the event's handler and record the outcome, in a savepoint of the batch's
    transaction (or in a transaction of its own when there is none)."""
    provider = event.provider
    mine = WebhookEvent.objects.filter(pk=event.pk, status=EventStatus.PROCESSING, claimed_at=now)
    handler = handler_for(provider.kind, event.type)
    if handler is None:
        mine.update(status=EventStatus.IGNORED, processed_at=clock(), last_error="", last_traceback="")
        return _Outcome(EventStatus.IGNORED)
    started = time.perf_counter()
    try:
        with transaction.atomic():
            if event.body_purged_at is not None:
                raise ValueError("the event's body was purged by retention; it cannot be processed")
            result = handler(Event(pk=event.pk, provider_id=provider.pk, provider_slug=provider.slug,
                                   kind=provider.kind, event_id=event.event_id, type=event.type,
                                   payload=event.payload))
            done = {"status": EventStatus.PROCESSED, "processed_at": clock(), "last_error": "",
                    "last_traceback": ""}
            if result is not None and result.subject_id:
                done.update(subject_type=result.subject_type, subject_id=str(result.subject_id))
            if not mine.update(**done):
                raise _LostClaim()
    except _LostClaim:
        return _Outcome(None)
    except Exception as err:  # noqa: BLE001 - any handler error fails the attempt, recorded
        return _Outcome(_record_failure(event, err, now, mine), err)
    finally:
        metrics.processing_seconds.labels(provider.slug).observe(time.perf_counter() - started)
    return _Outcome(EventStatus.PROCESSED)


def _record_failure(event: WebhookEvent, err: Exception, now: datetime, mine) -> str:
    error = f"{type(err).__name__}: {err}"[:2000]
    trace = "".join(traceback.format_exception(err))[-20000:]
    if event.attempts >= webhook_settings.MAX_ATTEMPTS:
        status, next_at = EventStatus.DEAD, None
    else:
        status, next_at = EventStatus.FAILED, now + retry_delay(event.attempts)
    mine.update(status=status, next_attempt_at=next_at, last_error=error, last_traceback=trace)
    return status


def _report(event: WebhookEvent, outcome: _Outcome) -> None:
    """Metrics and logs of a committed attempt (not of a batch rolled back and run again)."""
    if outcome.status is None:
        logger.warning("webhook event taken over by another worker", extra={"event": event.pk})
        return
    metrics.processing_total.labels(event.provider.slug, str(outcome.status)).inc()
    if outcome.error is not None:
        logger.warning("webhook processing failed", extra={
            "event": event.pk, "attempt": event.attempts, "status": str(outcome.status),
            "error": type(outcome.error).__name__})


def webhook_sweep(*, now: datetime | None = None) -> list[int]:
    """Enqueue events the relay or the queue left behind, or due for a retry; returns their ids.

    Left behind: `received` and never handed on within WEBHOOK_STALE_RECEIVED_SECONDS of
    being stored or replayed (no relay running), or handed on that long ago and not picked
    up (a task lost with a worker or the broker); `processing` for longer than
    WEBHOOK_STALE_PROCESSING_SECONDS (a dead worker: each goes in a task of its own).
    Due: `failed` whose next_attempt_at has passed. Rows another transaction holds (the
    relay, a worker's claim) are skipped.
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
                    .values_list("pk", "request_id", "status")[: webhook_settings.SWEEP_BATCH])
        if rows:
            WebhookEvent.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(enqueued_at=now)
            enqueue_events([(pk, rid) for pk, rid, status in rows if status != EventStatus.PROCESSING])
            # A worker died holding these, maybe killed by one of them: each goes alone, so
            # such an event spends its own attempts, not its neighbours'.
            enqueue_events([(pk, rid) for pk, rid, status in rows if status == EventStatus.PROCESSING], alone=True)
    if rows:
        logger.info("webhook sweeper enqueued events", extra={"count": len(rows)})
    return [pk for pk, _, _ in rows]
