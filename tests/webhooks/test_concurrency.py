"""Simultaneous deliveries and workers on PostgreSQL: one row, one processing run."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from tests.support.webhook_signing import as_meta, body_of, standard_headers
from webhooks import registry
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_process

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _in_threads(count: int, work) -> list:
    """Run work(i) in `count` threads released together; returns results (or raises)."""
    barrier = threading.Barrier(count, timeout=10)
    results, errors = [None] * count, []

    def run(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]
    return results


def test_concurrent_duplicate_deliveries_store_one_row_and_process_once(provider, task_queue):
    calls, lock = [], threading.Lock()
    loser_done = threading.Event()

    def handler(event):
        with lock:
            calls.append(event.event_id)
        # Stay inside the attempt until the other worker has given up on the event.
        assert loser_done.wait(10)

    body = body_of({"type": "test.concurrent", "data": {"n": 1}})
    headers = as_meta(standard_headers(body=body, msg_id="evt_race"))

    def deliver(i):
        return Client().post("/webhooks/sandbox/", data=body, content_type="application/json", **headers).json()

    answers = _in_threads(4, deliver)
    assert sorted(a["duplicate"] for a in answers) == [False, True, True, True]
    assert all(a["received"] for a in answers)
    event = WebhookEvent.objects.get()
    assert task_queue.relay() == [event.pk]
    assert [pk for pk, _ in task_queue.take_events()] == [event.pk]  # one row, one task

    def work(i):
        result = webhook_process(event_pk=event.pk)
        if result is None:
            loser_done.set()
        return result

    with registry.registered("payments", "test.concurrent", handler):
        # Two workers got the event (e.g. the sweeper re-enqueued it while the first ran).
        results = _in_threads(2, work)
    assert sorted(map(str, results)) == ["None", "processed"]
    assert calls == ["evt_race"]
    event.refresh_from_db()
    assert (event.status, event.attempts) == (EventStatus.PROCESSED, 1)


def test_overlapping_tasks_run_each_event_once(provider):
    """Two tasks with events in common (a sweeper re-enqueue while the relay's task runs):
    each event's handler commits once, whichever task claimed it."""
    from webhooks.processing import webhook_process_batch

    calls, lock = [], threading.Lock()

    def handler(event):
        with lock:
            calls.append(event.event_id)

    events = [WebhookEvent.objects.create(provider=provider, event_id=f"evt_o{i}", type="test.concurrent",
                                          raw_body=b"{}", payload={}) for i in range(6)]
    pks = [e.pk for e in events]
    batches = [[(pk, None) for pk in pks[:4]], [(pk, None) for pk in reversed(pks[2:])]]
    with registry.registered("payments", "test.concurrent", handler):
        results = _in_threads(2, lambda i: webhook_process_batch(batches[i]))
    # Every event was processed by exactly one of the tasks; the other found it taken.
    for pk in pks:
        outcomes = [statuses[[p for p, _ in batch].index(pk)]
                    for statuses, batch in zip(results, batches, strict=True) if (pk, None) in batch]
        assert sorted(map(str, outcomes)) == (["processed"] if len(outcomes) == 1 else ["None", "processed"])
    assert sorted(calls) == [f"evt_o{i}" for i in range(6)]
    assert set(WebhookEvent.objects.values_list("status", "attempts")) == {(EventStatus.PROCESSED, 1)}
