"""The relay: stored events to the task queue, each exactly once, losing nothing."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_q.conf import Conf

from tests.support.databases import database_url
from tests.support.processes import ROOT, wait_until
from tests.webhooks.factories import stored_event
from webhooks import queue, relay
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_sweep
from webhooks.relay import webhook_relay_once, webhook_relay_run


def test_a_pass_hands_on_new_events_oldest_first_with_their_request_ids(provider, task_queue):
    now = timezone.now()
    events = [stored_event(provider=provider, type_="x", request_id=f"req-{i}") for i in range(3)]
    assert webhook_relay_once(now=now) == [e.pk for e in events]
    assert task_queue.take_events() == [(e.pk, f"req-{i}") for i, e in enumerate(events)]
    assert set(WebhookEvent.objects.values_list("enqueued_at", flat=True)) == {now}
    assert webhook_relay_once() == []  # handed on once
    assert task_queue.size() == 0


def test_only_received_events_not_yet_handed_on_are_relayed(provider, task_queue):
    new = stored_event(provider=provider, type_="x")
    stored_event(provider=provider, type_="x", enqueued_at=timezone.now())  # already queued
    for status in (EventStatus.PROCESSING, EventStatus.FAILED, EventStatus.DEAD, EventStatus.PROCESSED):
        stored_event(provider=provider, type_="x", status=status)
    assert task_queue.relay() == [new.pk]


def test_a_pass_claims_at_most_its_batch(provider, task_queue):
    events = [stored_event(provider=provider, type_="x") for _ in range(5)]
    assert webhook_relay_once(limit=2) == [events[0].pk, events[1].pk]
    assert webhook_relay_once(limit=2) == [events[2].pk, events[3].pk]
    assert webhook_relay_once(limit=2) == [events[4].pk]


def test_tasks_carry_a_few_ids_each_spread_over_the_workers(monkeypatch, settings):
    monkeypatch.setattr(Conf, "WORKERS", 2)
    rows = [(pk, None) for pk in range(1, 101)]
    sizes = [len(batch) for batch in queue.task_batches(rows)]
    assert sizes == [10] * 10  # WEBHOOK_TASK_BATCH caps a task
    assert [len(b) for b in queue.task_batches(rows[:3])] == [2, 1]  # both workers get one
    assert [len(b) for b in queue.task_batches(rows[:1])] == [1]
    assert queue.task_batches([]) == []
    settings.WEBHOOK_TASK_BATCH = 1
    assert [len(b) for b in queue.task_batches(rows[:3])] == [1, 1, 1]


def test_tasks_carry_ids_and_request_ids_only(provider, task_queue):
    event = stored_event(provider=provider, type_="x", request_id="req-1",
                         payload={"secret": "whsec_do_not_queue", "type": "x"})
    task_queue.relay()
    [task] = task_queue.take()
    assert task["args"] == ([[event.pk, "req-1"]],) and task["kwargs"] == {}
    assert "whsec_do_not_queue" not in repr(task)


def test_a_broker_error_rolls_the_claim_back(provider, task_queue):
    class DownBroker:
        def enqueue(self, package):
            raise ConnectionError("broker unreachable")

    event = stored_event(provider=provider, type_="x")
    with pytest.raises(ConnectionError):
        webhook_relay_once(broker=DownBroker())
    event.refresh_from_db()
    assert event.enqueued_at is None  # still the relay's to hand on
    assert task_queue.relay() == [event.pk]


class StopAfter(threading.Event):
    """A stop event that records each wait and is set after `waits` of them."""

    def __init__(self, waits: int):
        super().__init__()
        self.waits, self.left = [], waits

    def wait(self, timeout=None):
        self.waits.append(timeout)
        self.left -= 1
        if self.left <= 0:
            self.set()
        return self.is_set()


def test_the_loop_goes_again_at_once_after_a_full_batch_and_polls_when_idle(provider, task_queue, monkeypatch):
    passes = []
    real = relay.webhook_relay_once

    def counted(**kwargs):
        passes.append(real(**kwargs))
        return passes[-1]

    monkeypatch.setattr(relay, "webhook_relay_once", counted)
    for _ in range(25):
        stored_event(provider=provider, type_="x")
    stop = StopAfter(waits=1)
    webhook_relay_run(stop, poll=0.05, limit=10)
    assert [len(p) for p in passes] == [10, 10, 5]  # no wait between full batches
    assert stop.waits == [0.05]
    assert len(task_queue.take_events()) == 25


def test_the_loop_outlives_errors_with_a_growing_wait(monkeypatch, caplog):
    outcomes = iter([RuntimeError("database down"), RuntimeError("still down"), []])

    def flaky_pass(**kwargs):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(relay, "webhook_relay_once", flaky_pass)
    monkeypatch.setattr(relay, "get_broker", lambda: None)
    stop = StopAfter(waits=3)
    with caplog.at_level("INFO", logger="webhooks.relay"):
        webhook_relay_run(stop, poll=0.05, limit=10)
    assert stop.waits == [0.5, 1.0, 0.05]
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("webhook relay pass failed; retrying") == 2 and "webhook relay recovered" in messages


# --- real concurrency and real processes ------------------------------------------------

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_hand_on_each_event_exactly_once(provider, task_queue, monkeypatch):
    """Three relays at once: while two hold claims in open transactions (a barrier keeps
    both inside), neither waits for the other's rows (SKIP LOCKED) and none relays a row
    twice."""
    events = [stored_event(provider=provider, type_="x") for _ in range(300)]
    inside = threading.Barrier(2, timeout=10)
    real_enqueue, who = relay.enqueue_events, collections.defaultdict(list)

    def enqueue(rows, *, broker=None):
        name = threading.current_thread().name
        if not who[name] and name != "relay-2":
            inside.wait()  # relay-0 and relay-1 both hold their first claim now
        who[name] += [pk for pk, _ in rows]
        return real_enqueue(rows, broker=broker)

    monkeypatch.setattr(relay, "enqueue_events", enqueue)
    stop, errors = threading.Event(), []

    def run():
        try:
            webhook_relay_run(stop, poll=0.001, limit=7)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, name=f"relay-{i}") for i in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: not relay.unrelayed().exists(), timeout=30, what="every event relayed")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(who["relay-0"]) and len(who["relay-1"])
    relayed = collections.Counter(pk for pks in who.values() for pk in pks)
    queued = collections.Counter(pk for pk, _ in task_queue.take_events())
    assert relayed == queued == collections.Counter(e.pk for e in events)
    assert set(relayed.values()) == {1}


# A relay that dies between its claim and its enqueue: it claims (rows locked and marked
# in its open transaction), announces it, and waits to be killed.
DOOMED_RELAY = """
import sys, threading, django
django.setup()
from webhooks import relay

def claimed_then_hang(rows, *, broker=None):
    print("claimed", len(rows), flush=True)
    threading.Event().wait()

relay.enqueue_events = claimed_then_hang
relay.webhook_relay_once()
"""


def _env() -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings"}


@pytest.mark.django_db(transaction=True)
def test_a_relay_killed_between_claim_and_enqueue_loses_nothing(provider, task_queue):
    event = stored_event(provider=provider, type_="x", received_at=timezone.now() - timedelta(seconds=61))
    doomed = subprocess.Popen([sys.executable, "-c", DOOMED_RELAY], cwd=ROOT, env=_env(),
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert doomed.stdout.readline().split() == ["claimed", "1"]
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait(timeout=10)
        doomed.stdout.close()
    event.refresh_from_db()
    assert (event.status, event.enqueued_at) == (EventStatus.RECEIVED, None)  # the claim died with it
    assert task_queue.size() == 0
    # No relay running any more: the sweeper hands it on (it was stored over a minute ago).
    assert webhook_sweep() == [event.pk]
    assert task_queue.take_events() == [(event.pk, None)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_relay_command_relays_until_signalled_then_exits_cleanly(provider, task_queue, stop_signal):
    cmd = [sys.executable, "manage.py", "webhook_relay", "--poll", "0.02"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    try:
        assert any("webhook relay started" in line for line in proc.stdout), "the relay did not start"
        event = stored_event(provider=provider, type_="x", request_id="req-cmd")
        wait_until(lambda: WebhookEvent.objects.filter(pk=event.pk, enqueued_at__isnull=False).exists(),
                   timeout=20, what="the relay to hand the event on")
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=20) == 0
        assert "webhook relay stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    assert task_queue.take_events() == [(event.pk, "req-cmd")]


@override_settings(WEBHOOK_RELAY_BATCH=3)
def test_the_batch_setting_limits_a_pass(provider):
    for _ in range(4):
        stored_event(provider=provider, type_="x")
    assert len(webhook_relay_once()) == 3
