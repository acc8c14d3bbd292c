"""Replay: put chosen events back to `received` for the relay (admin action, command).

A replayed row is reset exactly like a new one (`enqueued_at` unset), so the relay hands
it on within its poll interval, the sweeper when no relay runs, and a bulk replay goes
out in the relay's batches; replaying calls no broker, so a broker outage cannot fail it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from webhooks.models import FINAL_STATUSES, EventStatus, WebhookEvent


@dataclass(frozen=True)
class Replayed:
    pk: int
    provider: str
    event_id: str
    type: str
    previous_status: str


@dataclass
class ReplayOutcome:
    """Events put back for processing, and those left alone with the reason."""

    enqueued: list[Replayed] = field(default_factory=list)
    skipped_final: list[int] = field(default_factory=list)  # processed/ignored, no force
    skipped_processing: list[int] = field(default_factory=list)  # a worker has it right now
    skipped_purged: list[int] = field(default_factory=list)  # body gone: nothing to replay


def webhook_replay(*, events: QuerySet[WebhookEvent], force: bool = False, by=None,
                   now: datetime | None = None) -> ReplayOutcome:
    """Put `events` back for processing with a fresh attempt budget, recording who
    replayed and when.

    Processed and ignored events are replayed only with `force` (handlers are idempotent,
    so that changes nothing but is rarely what is meant). Events a worker holds right
    now and events whose body was purged are skipped.
    """
    now = now or timezone.now()
    outcome = ReplayOutcome()
    with transaction.atomic():
        for event in events.select_related("provider").order_by("pk"):
            if event.body_purged_at is not None:
                outcome.skipped_purged.append(event.pk)
                continue
            if event.status == EventStatus.PROCESSING:
                outcome.skipped_processing.append(event.pk)
                continue
            if event.status in FINAL_STATUSES and not force:
                outcome.skipped_final.append(event.pk)
                continue
            # Conditional on the status we saw: a worker finishing meanwhile wins.
            updated = WebhookEvent.objects.filter(pk=event.pk, status=event.status).update(
                status=EventStatus.RECEIVED, attempts=0, next_attempt_at=None, enqueued_at=None,
                replayed_at=now, replayed_by=by, replay_count=F("replay_count") + 1,
            )
            if not updated:
                outcome.skipped_processing.append(event.pk)
                continue
            outcome.enqueued.append(Replayed(pk=event.pk, provider=event.provider.slug, event_id=event.event_id,
                                             type=event.type, previous_status=event.status))
    return outcome
