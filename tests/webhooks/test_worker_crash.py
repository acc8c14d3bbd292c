"""A worker process killed in the middle of a handler: the event is retried, not lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support.databases import database_url
from tests.support.processes import ROOT
from tests.webhooks.factories import stored_event
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
    webhook_process(event_pk=int(sys.argv[1]))
"""


@pytest.mark.django_db(transaction=True)
def test_event_of_a_killed_worker_is_picked_up_again(provider, task_queue):
    event = stored_event(provider=provider, type_="test.crash")
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings"}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(event.pk)], cwd=ROOT, env=env,
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
