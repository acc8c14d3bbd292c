"""The real worker: a `manage.py qcluster` process takes an intake's task off the broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from payments.models import Charge, ChargeStatus
from tests.support.webhook_signing import as_meta, body_of, charge_event, standard_headers
from tests.webhooks.factories import charge
from tests.webhooks.test_worker_crash import ROOT, _database_url
from webhooks.models import EventStatus, WebhookEvent


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_qcluster_processes_a_delivered_event(provider, client, task_queue):
    ch = charge(provider=provider, provider_charge_id="pc_q")
    body = body_of(charge_event(event_id="evt_q", type_="charge.succeeded", charge_id="pc_q"))
    response = client.post("/webhooks/sandbox/", data=body, content_type="application/json",
                           **as_meta(standard_headers(body=body, msg_id="evt_q")))
    assert response.json() == {"received": True, "duplicate": False}
    assert task_queue.size() == 1

    env = {**os.environ, "DATABASE_URL": _database_url(), "Q_WORKERS": "1"}
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while WebhookEvent.objects.get().status != EventStatus.PROCESSED:
            assert cluster.poll() is None, "qcluster exited"
            assert time.monotonic() < deadline, "not processed within 60 s"
            time.sleep(0.2)  # polling another process's database writes
    finally:
        cluster.send_signal(signal.SIGINT)  # its main process only: a group SIGTERM can hang it
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()
    assert Charge.objects.get(pk=ch.pk).status == ChargeStatus.SUCCEEDED
    assert WebhookEvent.objects.get().attempts == 1
