"""A worker process killed in the middle of a handler: the event is retried, not lost,
and so are the other events of its task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import Charge, ChargeStatus
from tests.support.databases import database_url
from tests.support.processes import ROOT
from tests.support.webhook_signing import charge_event
from tests.webhooks.conftest import task_events
from tests.webhooks.factories import charge, stored_event
from webhooks import registry
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_process, webhook_sweep

# The doomed worker: a handler that announces itself, then hangs until killed.
WORKER = """
import sys, threading, django
django.setup()
from webhooks import registry
from webhooks.processing import webhook_process

def hang(event):
    print("started", flush=True)
    threading.Event().wait()

with registry.registered("payments", "test.crash", hang):
    if len(sys.argv) == 2:
        webhook_process(event_pk=int(sys.argv[1]))
    else:  # a task of several events, as the relay queues them
        from webhooks.tasks import process_events

        process_events([[int(pk), None] for pk in sys.argv[1:]])
"""


def _run_until_killed(*event_pks: int) -> None:
    """Start the doomed worker on these events; SIGKILL it once its handler has started."""
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings"}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, *map(str, event_pks)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert worker.stdout.readline().strip() == "started"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        worker.stdout.close()


@pytest.mark.django_db(transaction=True)
def test_event_of_a_killed_worker_is_picked_up_again(provider, task_queue):
    event = stored_event(provider=provider, type_="test.crash")
    _run_until_killed(event.pk)

    event.refresh_from_db()
    assert (event.status, event.attempts) == (EventStatus.PROCESSING, 1)  # what the dead worker left
    now = timezone.now()
    assert webhook_sweep(now=now) == []  # it might still be running: not yet
    later = event.claimed_at + timedelta(seconds=121)
    assert webhook_sweep(now=later) == [event.pk]
    assert task_queue.take_events() == [(event.pk, None)]  # back on the real queue
    calls = []
    with registry.registered("payments", "test.crash", calls.append):
        assert webhook_process(event_pk=event.pk, now=later) == EventStatus.PROCESSED
    event = WebhookEvent.objects.get(pk=event.pk)
    assert (event.status, event.attempts, len(calls)) == (EventStatus.PROCESSED, 2, 1)


@pytest.mark.django_db(transaction=True)
def test_a_task_killed_mid_batch_leaves_every_event_for_the_sweeper(provider, task_queue):
    """The first event's handler ran (its charge updated, not committed), the second hangs
    when the worker is killed, the third never started: all three are recovered, each in
    a task of its own."""
    def charge_succeeded(n):
        charge(provider=provider, provider_charge_id=f"pc_k{n}")
        return stored_event(provider=provider, type_="charge.succeeded", event_id=f"evt_k{n}",
                            payload=charge_event(event_id=f"evt_k{n}", type_="charge.succeeded", charge_id=f"pc_k{n}"))

    first = charge_succeeded(1)
    crash = stored_event(provider=provider, type_="test.crash")
    third = charge_succeeded(3)
    _run_until_killed(first.pk, crash.pk, third.pk)

    rows = WebhookEvent.objects.order_by("pk")
    assert list(rows.values_list("status", "attempts")) == [(EventStatus.PROCESSING, 1)] * 3
    assert set(Charge.objects.values_list("status", flat=True)) == {ChargeStatus.PENDING}  # rolled back
    later = WebhookEvent.objects.get(pk=crash.pk).claimed_at + timedelta(seconds=121)
    assert webhook_sweep(now=later) == [first.pk, crash.pk, third.pk]
    tasks = [task_events(task) for task in task_queue.take()]
    assert tasks == [[(first.pk, None)], [(crash.pk, None)], [(third.pk, None)]]
    with registry.registered("payments", "test.crash", lambda event: None):
        for [(pk, _)] in tasks:
            assert webhook_process(event_pk=pk, now=later) == EventStatus.PROCESSED
    assert list(rows.values_list("status", "attempts")) == [(EventStatus.PROCESSED, 2)] * 3
    assert set(Charge.objects.values_list("status", flat=True)) == {ChargeStatus.SUCCEEDED}
