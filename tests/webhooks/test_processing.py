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
    """Register a handler for ("sandbox", "test.flaky") for the test; yields a factory."""
    with contextlib.ExitStack() as stack:

        def install(failures: int) -> Flaky:
            return stack.enter_context(registry.registered("sandbox", "test.flaky", Flaky(failures)))

        yield install


def _drain(event_pk: int, task_queue, capture, *, start, max_rounds: int = 12) -> list:
    """Run the event like production does: the queued task, then sweeper passes at each
    due time (the clock is injected), until nothing is left to do. Returns the statuses."""
    statuses = [r for r in task_queue.run_all() if r]
    now = start
    for _ in range(max_rounds):
        event = WebhookEvent.objects.get(pk=event_pk)
        if event.status != EventStatus.FAILED:
            break
        now = event.next_attempt_at
        with capture(execute=True):  # the test's transaction never commits: run on_commit now
            assert webhook_sweep(now=now) == [event_pk]
        for task in task_queue.take():
            statuses.append(webhook_process(event_pk=task["args"][0], now=now))
    return statuses


def test_event_with_a_handler_is_processed_by_the_queued_task(provider, task_queue, client,
                                                              django_capture_on_commit_callbacks):
    from tests.support.webhook_signing import as_meta, body_of, charge_event, standard_headers

    ch = charge(provider=provider, provider_charge_id="py_1")
    body = body_of(charge_event(event_id="evt_a", type_="charge.succeeded", charge_id="py_1"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/webhooks/sandbox/", data=body, content_type="application/json",
                               **as_meta(standard_headers(body=body, msg_id="evt_a")))
    assert response.json() == {"received": True, "duplicate": False}
    assert WebhookEvent.objects.get().status == EventStatus.RECEIVED  # the answer did not wait
    assert task_queue.run_all() == [EventStatus.PROCESSED]
    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts, event.charge_id) == (EventStatus.PROCESSED, 1, ch.pk)
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
        provider, flaky, task_queue, django_capture_on_commit_callbacks):
    handler = flaky(3)
    start = timezone.now()
    event = stored_event(provider=provider, type_="test.flaky", received_at=start)
    from webhooks.queue import enqueue

    enqueue(event_pk=event.pk, request_id="req-flaky")
    statuses = _drain(event.pk, task_queue, django_capture_on_commit_callbacks, start=start)
    assert statuses == [EventStatus.FAILED] * 3 + [EventStatus.PROCESSED]
    event.refresh_from_db()
    assert (event.status, event.attempts, handler.calls) == (EventStatus.PROCESSED, 4, 4)
    assert event.last_error == "" and event.next_attempt_at is None


def test_always_failing_ends_dead_after_5_with_the_error_recorded(
        provider, flaky, task_queue, django_capture_on_commit_callbacks):
    handler = flaky(1000)
    start = timezone.now()
    event = stored_event(provider=provider, type_="test.flaky")
    from webhooks.queue import enqueue

    enqueue(event_pk=event.pk, request_id=None)
    statuses = _drain(event.pk, task_queue, django_capture_on_commit_callbacks, start=start)
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
def test_max_attempts_is_a_setting(provider, flaky, task_queue, django_capture_on_commit_callbacks):
    flaky(1000)
    event = stored_event(provider=provider, type_="test.flaky")
    from webhooks.queue import enqueue

    enqueue(event_pk=event.pk, request_id=None)
    assert _drain(event.pk, task_queue, django_capture_on_commit_callbacks, start=timezone.now())[-1] == EventStatus.DEAD
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

    with registry.registered("sandbox", "test.partial", writes_then_fails):
        event = stored_event(provider=provider, type_="test.partial")
        assert webhook_process(event_pk=event.pk) == EventStatus.FAILED
    assert Charge.objects.get(pk=ch.pk).description == ""


def test_sweeper_re_enqueues_received_events_the_queue_lost(provider, task_queue,
                                                             django_capture_on_commit_callbacks):
    now = timezone.now()
    lost = stored_event(provider=provider, type_="x", enqueued_at=now - timedelta(seconds=61), request_id="r-9")
    stored_event(provider=provider, type_="x", enqueued_at=now - timedelta(seconds=5))  # still in the queue
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_sweep(now=now) == [lost.pk]
    [task] = task_queue.take()
    assert task["args"] == (lost.pk,) and task["kwargs"] == {"request_id": "r-9"}
    lost.refresh_from_db()
    assert lost.enqueued_at == now
    assert webhook_sweep(now=now + timedelta(seconds=30)) == []  # not again until stale again


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
    task_queue.take()
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


def test_scheduled_task_entry_points_run_the_sweeper_and_retention(provider, django_capture_on_commit_callbacks,
                                                                   task_queue):
    from webhooks.tasks import purge_bodies, sweep

    old = timezone.now() - timedelta(days=40)
    stored_event(provider=provider, type_="x", enqueued_at=old)
    stored_event(provider=provider, type_="x", status=EventStatus.PROCESSED, processed_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep() == 1
    assert purge_bodies() == 1
    assert len(task_queue.take()) == 1
