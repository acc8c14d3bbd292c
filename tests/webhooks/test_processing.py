"""Processing: claim, handler registry, retries with backoff, dead letters, the sweeper."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule

from payments.models import Charge, ChargeStatus
from tests.webhooks.factories import charge, stored_event
from webhooks import registry
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import retry_delay, webhook_process, webhook_sweep
from webhooks.schedules import ensure_schedules
from webhooks.tasks import process_event


class Flaky:
    """A handler that fails its first `failures` calls, then succeeds; counts its runs."""

    def __init__(self, failures: int):
        self.failures, self.calls = failures, 0

    def __call__(self, event):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"boom {self.calls}")
        return None


@pytest.fixture
def flaky():
    """Register a handler for ("payments", "test.flaky") for the test (the sandbox kind
    has that capability); yields a factory."""
    with contextlib.ExitStack() as stack:

        def install(failures: int) -> Flaky:
            return stack.enter_context(registry.registered("payments", "test.flaky", Flaky(failures)))

        yield install


def _drain(event_pk: int, task_queue, *, start, max_rounds: int = 12) -> list:
    """Run the event like production does: the queued task, then sweeper passes at each
    due time (the clock is injected), until nothing is left to do. Returns the statuses."""
    statuses = [r for r in task_queue.run_all() if r]
    now = start
    for _ in range(max_rounds):
        event = WebhookEvent.objects.get(pk=event_pk)
        if event.status != EventStatus.FAILED:
            break
        now = event.next_attempt_at
        assert webhook_sweep(now=now) == [event_pk]
        for event_pk, _ in task_queue.take_events():
            statuses.append(webhook_process(event_pk=event_pk, now=now))
    return statuses


def test_event_with_a_handler_is_processed_by_the_queued_task(provider, task_queue, client):
    from tests.support.webhook_signing import as_meta, body_of, charge_event, standard_headers

    ch = charge(provider=provider, provider_charge_id="py_1")
    body = body_of(charge_event(event_id="evt_a", type_="charge.succeeded", charge_id="py_1"))
    response = client.post("/webhooks/sandbox/", data=body, content_type="application/json",
                           **as_meta(standard_headers(body=body, msg_id="evt_a")))
    assert response.json() == {"received": True, "duplicate": False}
    assert WebhookEvent.objects.get().status == EventStatus.RECEIVED  # the answer did not wait
    assert task_queue.relay() == [WebhookEvent.objects.get().pk]
    assert task_queue.run_all() == [EventStatus.PROCESSED]
    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts) == (EventStatus.PROCESSED, 1)
    assert (event.subject_type, event.subject_id) == ("payments.charge", ch.pk)
    assert event.processed_at is not None and event.last_error == ""
    assert Charge.objects.get().status == ChargeStatus.SUCCEEDED


def test_event_without_a_handler_is_ignored(provider):
    event = stored_event(provider=provider, type_="customer.created")
    assert webhook_process(event_pk=event.pk) == EventStatus.IGNORED
    event.refresh_from_db()
    assert (event.status, event.attempts) == (EventStatus.IGNORED, 1)


def test_a_finished_event_is_not_processed_again(provider, flaky):
    handler = flaky(0)
    event = stored_event(provider=provider, type_="test.flaky")
    assert webhook_process(event_pk=event.pk) == EventStatus.PROCESSED
    assert webhook_process(event_pk=event.pk) is None
    assert process_event(event.pk, "req-1") is None
    assert handler.calls == 1


def test_fails_three_times_then_succeeds_ends_processed_with_attempts_4(
        provider, flaky, task_queue):
    handler = flaky(3)
    start = timezone.now()
    event = stored_event(provider=provider, type_="test.flaky", received_at=start)
    assert task_queue.relay() == [event.pk]
    statuses = _drain(event.pk, task_queue, start=start)
    assert statuses == [EventStatus.FAILED] * 3 + [EventStatus.PROCESSED]
    event.refresh_from_db()
    assert (event.status, event.attempts, handler.calls) == (EventStatus.PROCESSED, 4, 4)
    assert event.last_error == "" and event.next_attempt_at is None


def test_always_failing_ends_dead_after_5_with_the_error_recorded(
        provider, flaky, task_queue):
    handler = flaky(1000)
    start = timezone.now()
    event = stored_event(provider=provider, type_="test.flaky")
    assert task_queue.relay() == [event.pk]
    statuses = _drain(event.pk, task_queue, start=start)
    assert statuses == [EventStatus.FAILED] * 4 + [EventStatus.DEAD]
    event.refresh_from_db()
    assert (event.status, event.attempts, handler.calls) == (EventStatus.DEAD, 5, 5)
    assert event.last_error == "RuntimeError: boom 5"
    assert "Traceback" in event.last_traceback and "boom 5" in event.last_traceback
    assert event.next_attempt_at is None
    # A dead event waits for a replay: neither the sweeper nor a stray task touches it.
    assert webhook_sweep(now=start + timedelta(days=30)) == []
    assert webhook_process(event_pk=event.pk, now=start + timedelta(days=30)) is None


@override_settings(WEBHOOK_MAX_ATTEMPTS=3)
def test_max_attempts_is_a_setting(provider, flaky, task_queue):
    flaky(1000)
    event = stored_event(provider=provider, type_="test.flaky")
    assert task_queue.relay() == [event.pk]
    assert _drain(event.pk, task_queue, start=timezone.now())[-1] == EventStatus.DEAD
    assert WebhookEvent.objects.get(pk=event.pk).attempts == 3


def test_retries_back_off_exponentially_and_wait_until_due(provider, flaky):
    flaky(1000)
    now = timezone.now()
    event = stored_event(provider=provider, type_="test.flaky")
    assert webhook_process(event_pk=event.pk, now=now) == EventStatus.FAILED
    event.refresh_from_db()
    assert event.next_attempt_at == now + timedelta(seconds=30)
    # Not due yet: neither a task nor the sweeper runs it early.
    assert webhook_process(event_pk=event.pk, now=now + timedelta(seconds=29)) is None
    assert webhook_sweep(now=now + timedelta(seconds=29)) == []
    later = now + timedelta(seconds=30)
    assert webhook_process(event_pk=event.pk, now=later) == EventStatus.FAILED
    event.refresh_from_db()
    assert event.next_attempt_at == later + timedelta(seconds=60)
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    with override_settings(WEBHOOK_RETRY_MAX_SECONDS=100):
        assert retry_delay(4).total_seconds() == 100


def test_a_failed_attempt_rolls_back_the_handlers_writes(provider, flaky):
    ch = charge(provider=provider, provider_charge_id="py_rb")

    def writes_then_fails(event):
        Charge.objects.filter(pk=ch.pk).update(description="half-done")
        raise RuntimeError("after writing")

    with registry.registered("payments", "test.partial", writes_then_fails):
        event = stored_event(provider=provider, type_="test.partial")
        assert webhook_process(event_pk=event.pk) == EventStatus.FAILED
    assert Charge.objects.get(pk=ch.pk).description == ""


def test_sweeper_re_enqueues_received_events_the_queue_lost(provider, task_queue):
    now = timezone.now()
    lost = stored_event(provider=provider, type_="x", enqueued_at=now - timedelta(seconds=61), request_id="r-9")
    stored_event(provider=provider, type_="x", enqueued_at=now - timedelta(seconds=5))  # still in the queue
    assert webhook_sweep(now=now) == [lost.pk]
    assert task_queue.take_events() == [(lost.pk, "r-9")]
    lost.refresh_from_db()
    assert lost.enqueued_at == now
    assert webhook_sweep(now=now + timedelta(seconds=30)) == []  # not again until stale again


def test_sweeper_enqueues_events_the_relay_never_handed_on(provider, task_queue):
    """No relay running: stored and replayed events still reach the queue, only later."""
    now = timezone.now()
    stale = now - timedelta(seconds=61)
    orphan = stored_event(provider=provider, type_="x", received_at=stale, request_id="r-1")
    stored_event(provider=provider, type_="x", received_at=now - timedelta(seconds=5))  # the relay's, for now
    # Received long ago but replayed just now: the relay's too.
    stored_event(provider=provider, type_="x", received_at=stale, replayed_at=now - timedelta(seconds=5))
    replayed_long_ago = stored_event(provider=provider, type_="x", received_at=stale - timedelta(days=1),
                                     replayed_at=stale)
    assert webhook_sweep(now=now) == [orphan.pk, replayed_long_ago.pk]
    assert task_queue.take_events() == [(orphan.pk, "r-1"), (replayed_long_ago.pk, None)]
    orphan.refresh_from_db()
    assert orphan.enqueued_at == now  # handed on: the relay leaves it alone now
    assert task_queue.relay() == [WebhookEvent.objects.filter(received_at__gt=stale).get().pk,
                                  WebhookEvent.objects.get(replayed_at__gt=stale).pk]


def test_a_worker_lost_mid_processing_is_retried_not_lost(provider, flaky, task_queue):
    handler = flaky(0)
    now = timezone.now()
    # What a killed worker leaves behind: claimed, attempt counted, never finished.
    event = stored_event(provider=provider, type_="test.flaky", status=EventStatus.PROCESSING, attempts=1,
                         claimed_at=now - timedelta(seconds=60))
    assert webhook_process(event_pk=event.pk, now=now) is None  # may still be running: hands off
    assert webhook_sweep(now=now) == []
    later = now + timedelta(seconds=61)
    assert webhook_sweep(now=later) == [event.pk]
    assert task_queue.take_events() == [(event.pk, None)]
    assert webhook_process(event_pk=event.pk, now=later) == EventStatus.PROCESSED
    event.refresh_from_db()
    assert (event.status, event.attempts, handler.calls) == (EventStatus.PROCESSED, 2, 1)


def test_a_worker_lost_during_the_last_attempt_leaves_the_event_dead(provider, flaky):
    handler = flaky(0)
    now = timezone.now()
    event = stored_event(provider=provider, type_="test.flaky", status=EventStatus.PROCESSING, attempts=5,
                         claimed_at=now - timedelta(seconds=121))
    assert webhook_process(event_pk=event.pk, now=now) is None
    event.refresh_from_db()
    assert event.status == EventStatus.DEAD and handler.calls == 0
    assert "worker lost" in event.last_error


def test_schedules_exist_after_migrate_and_are_not_duplicated(db):
    # migrate (run to build the test database) created them; every deploy migrates
    # again, which must leave exactly one of each.
    assert Schedule.objects.filter(name="webhooks.sweep").exists()
    ensure_schedules()
    ensure_schedules()
    rows = Schedule.objects.filter(name__startswith="webhooks.")
    assert sorted(rows.values_list("name", "func", "minutes")) == [
        ("webhooks.purge_bodies", "webhooks.tasks.purge_bodies", 1440),
        ("webhooks.sweep", "webhooks.tasks.sweep", 1)]


def test_processing_outcomes_are_counted(provider, flaky):
    from prometheus_client import REGISTRY

    def sample(outcome):
        return REGISTRY.get_sample_value("webhook_processing_total",
                                         {"provider": provider.slug, "outcome": outcome}) or 0

    before = sample("processed"), sample("ignored")
    flaky(0)
    webhook_process(event_pk=stored_event(provider=provider, type_="test.flaky").pk)
    webhook_process(event_pk=stored_event(provider=provider, type_="nobody.handles").pk)
    assert (sample("processed"), sample("ignored")) == (before[0] + 1, before[1] + 1)


def test_the_task_logs_under_the_request_id_of_the_delivery(provider, flaky, caplog):
    import logging

    flaky(1000)
    event = stored_event(provider=provider, type_="test.flaky", request_id="req-from-intake")
    with caplog.at_level(logging.WARNING, logger="webhooks"):
        assert process_event(event.pk, "req-from-intake") == EventStatus.FAILED
    [record] = [r for r in caplog.records if r.getMessage() == "webhook processing failed"]
    # Stamped by the logging config's filter while the task ran under bound(request_id).
    assert record.request_id == "req-from-intake"


@pytest.fixture
def effects(provider):
    """Handlers for "test.effect" (one charge per event, named in the payload: the handler
    adds 1 to its amount_refunded, so a committed run is counted) and "test.poison" (its
    worker dies: SystemExit). Yields a function: event id -> committed runs."""
    from django.db.models import F

    def effect(event):
        Charge.objects.filter(provider_charge_id=event.payload["charge"]).update(
            amount_refunded=F("amount_refunded") + 1)

    def poison(event):
        raise SystemExit("the worker dies")

    with registry.registered("payments", "test.effect", effect), \
            registry.registered("payments", "test.poison", poison):
        yield lambda event: Charge.objects.get(provider_charge_id=event.event_id).amount_refunded


def _effect_event(provider, type_="test.effect", **fields):
    event = stored_event(provider=provider, type_=type_, **fields)
    charge(provider=provider, provider_charge_id=event.event_id)
    event.payload = {"charge": event.event_id}
    event.save(update_fields=["payload"])
    return event


def test_a_batch_with_a_failing_handler_processes_the_others_and_records_the_failure(
        provider, effects, caplog):
    import logging

    from config.request_id import current
    from webhooks.tasks import process_events

    a, c = (_effect_event(provider, request_id=f"req-{n}") for n in "ac")
    seen = []

    def writes_then_fails(event):
        seen.append(current())
        Charge.objects.filter(pk=ch.pk).update(description="half-done")
        raise RuntimeError("after writing")

    ch = charge(provider=provider, provider_charge_id="pc_b")
    with registry.registered("payments", "test.partial", writes_then_fails), \
            caplog.at_level(logging.WARNING, logger="webhooks"):
        b = stored_event(provider=provider, type_="test.partial", request_id="req-b")
        assert process_events([[a.pk, "req-a"], [b.pk, "req-b"], [c.pk, "req-c"]]) == [
            "processed", "failed", "processed"]
    assert (effects(a), effects(c)) == (1, 1)
    assert Charge.objects.get(pk=ch.pk).description == ""  # rolled back to its savepoint only
    b.refresh_from_db()
    assert (b.status, b.attempts, b.last_error) == (EventStatus.FAILED, 1, "RuntimeError: after writing")
    assert b.next_attempt_at == b.claimed_at + timedelta(seconds=30)
    assert set(WebhookEvent.objects.filter(pk__in=[a.pk, c.pk]).values_list("status", "attempts")) == {
        (EventStatus.PROCESSED, 1)}
    # Each event ran, and its failure was logged, under the id of the request that delivered it.
    [record] = [r for r in caplog.records if r.getMessage() == "webhook processing failed"]
    assert (seen, record.event, record.request_id) == (["req-b"], b.pk, "req-b")


def test_a_batch_failing_as_a_whole_runs_its_events_one_by_one(provider, effects, monkeypatch, caplog):
    """An error the savepoints cannot contain (here: recording one event's failure) does
    not cost the others their attempt: the batch is run again, one event at a time."""
    import logging

    from webhooks import processing

    a, c = _effect_event(provider), _effect_event(provider)
    with registry.registered("payments", "test.partial", Flaky(1000)):
        b = stored_event(provider=provider, type_="test.partial")

        def record_failure(*args):
            raise RuntimeError("database hiccup")

        monkeypatch.setattr(processing, "_record_failure", record_failure)
        with caplog.at_level(logging.WARNING, logger="webhooks"):
            statuses = processing.webhook_process_batch([(a.pk, None), (b.pk, None), (c.pk, None)])
    assert statuses == [EventStatus.PROCESSED, None, EventStatus.PROCESSED]
    assert (effects(a), effects(c)) == (1, 1)  # the first run was rolled back
    b.refresh_from_db()
    assert (b.status, b.attempts) == (EventStatus.PROCESSING, 1)  # for the sweeper
    messages = [r.getMessage() for r in caplog.records]
    assert "webhook batch failed as a whole; running its events one by one" in messages
    assert "webhook processing crashed" in messages


def test_a_poison_event_that_kills_its_worker_ends_dead_and_its_neighbours_processed(
        provider, effects, task_queue):
    """The worker dies in the middle of a batch: nothing of the batch commits, the
    sweeper hands each event on alone, and only the poison event spends its attempts."""
    from tests.webhooks.conftest import task_events
    from webhooks.processing import webhook_process_batch

    a, poison, c = _effect_event(provider), stored_event(provider=provider, type_="test.poison"), \
        _effect_event(provider)
    now = timezone.now()
    with pytest.raises(SystemExit):
        webhook_process_batch([(a.pk, None), (poison.pk, None), (c.pk, None)], now=now)
    assert effects(a) == 0  # ran before the poison, rolled back with the batch
    assert set(WebhookEvent.objects.values_list("status", "attempts")) == {(EventStatus.PROCESSING, 1)}

    sweeps = 0
    while sweeps < 10:
        now += timedelta(seconds=121)
        if not webhook_sweep(now=now):
            break
        sweeps += 1
        tasks = [task_events(task) for task in task_queue.take()]
        assert all(len(events) == 1 for events in tasks)  # each alone
        for events in tasks:
            with contextlib.suppress(SystemExit):
                webhook_process_batch(events, now=now)
    poison.refresh_from_db()
    assert (poison.status, poison.attempts, sweeps) == (EventStatus.DEAD, 5, 5)
    assert "worker lost" in poison.last_error
    assert set(WebhookEvent.objects.filter(pk__in=[a.pk, c.pk]).values_list("status", "attempts")) == {
        (EventStatus.PROCESSED, 2)}
    assert (effects(a), effects(c)) == (1, 1)


def test_a_tasks_batch_shares_its_claim_and_its_transaction(provider, effects):
    """A commit is most of an event's cost, so a task of ten pays for one claim and one
    transaction, not ten of each: ten one-statement handlers take 5 statements an event (13
    before batching) — the handler's UPDATE, a savepoint and its release, the mark, the
    lookup — plus a few for the whole task."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from webhooks.processing import webhook_process_batch

    events = [_effect_event(provider) for _ in range(10)]
    with CaptureQueriesContext(connection) as queries:
        assert webhook_process_batch([(e.pk, None) for e in events]) == [EventStatus.PROCESSED] * 10
    assert len(queries) <= 10 * 5 + 6, [q["sql"][:80] for q in queries]
    assert [effects(e) for e in events] == [1] * 10


def test_a_task_with_an_event_listed_twice_runs_it_once(provider, effects):
    from webhooks.processing import webhook_process_batch

    a = _effect_event(provider)
    assert webhook_process_batch([(a.pk, None), (a.pk, None)]) == [EventStatus.PROCESSED] * 2
    assert effects(a) == 1


def test_scheduled_task_entry_points_run_the_sweeper_and_retention(provider, task_queue):
    from webhooks.tasks import purge_bodies, sweep

    old = timezone.now() - timedelta(days=40)
    stored_event(provider=provider, type_="x", enqueued_at=old)
    stored_event(provider=provider, type_="x", status=EventStatus.PROCESSED, processed_at=old)
    assert sweep() == 1
    assert purge_bodies() == 1
    assert len(task_queue.take()) == 1
