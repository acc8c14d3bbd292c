"""Exactly once under real concurrency, on PostgreSQL: threads, two server processes, refunds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from idempotency.models import IdempotencyRecord
from payments.models import Charge, Refund
from tests.support.databases import database_url

from .conftest import CHARGE

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def run_concurrently(n: int, send, *, release_when=None) -> list:
    """Start `n` threads that call `send(i)` together (a barrier) and return their answers.

    `release_when(answers)` is polled under a condition each time an answer arrives; the
    test uses it to open the fake provider's gate once every other request has answered.
    """
    barrier = threading.Barrier(n)
    answers: list = []
    errors: list = []
    done = threading.Condition()

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            answer = send(i)
            with done:
                answers.append(answer)
                done.notify_all()
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            with done:
                errors.append(err)
                done.notify_all()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    if release_when is not None:
        with done:
            assert done.wait_for(lambda: release_when(answers) or errors, timeout=60)
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(answers) == n
    return answers


def hold_provider(fake_provider, others: int):
    """Block the first charge at the provider until `others` requests have answered."""
    fake_provider.gate = threading.Event()

    def release(answers):
        if len(answers) >= others:
            fake_provider.gate.set()
            return True
        return False

    return release


def test_50_threads_same_key_make_one_provider_call(pay_provider, api_key, fake_provider):
    def send(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        response = client.post("/api/v1/charges", data=CHARGE, format="json", HTTP_IDEMPOTENCY_KEY="race")
        return response.status_code, response.get("Idempotent-Replayed"), response.json()

    answers = run_concurrently(50, send, release_when=hold_provider(fake_provider, 49))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [201] + [409] * 49
    assert all(body["error"]["type"] == "idempotency_key_in_use" for status, _, body in answers if status == 409)
    assert sum(fake_provider.calls_by_key.values()) == 1
    assert len(fake_provider.charges) == 1 and Charge.objects.count() == 1

    # Once it is done, 50 more at once are all the same 201 replay.
    created = next(body for status, _, body in answers if status == 201)
    replays = run_concurrently(50, send)
    assert {(status, replayed) for status, replayed, _ in replays} == {(201, "true")}
    assert all(body == created for _, _, body in replays)
    assert sum(fake_provider.calls_by_key.values()) == 1


@pytest.fixture
def two_servers(pay_provider):
    """Two gunicorn processes serving the app against this test database."""
    env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1",
           "DJANGO_DEBUG": "1", "LOG_LEVEL": "WARNING"}
    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        env["REDIS_URL"] = settings.CACHES["default"]["LOCATION"]
    processes, urls = [], []
    try:
        for _ in range(2):
            process = subprocess.Popen(
                [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application", "--bind", "127.0.0.1:0",
                 "--workers", "1", "--threads", "8", "--timeout", "60", "--log-level", "info"],
                cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
            processes.append(process)
            urls.append(_listening_url(process))
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _listening_url(process) -> str:
    """Read gunicorn's log until it says where it listens (port 0: the OS picked one)."""
    for line in process.stderr:
        match = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line)
        if match:
            # Keep draining its log so the pipe never fills and blocks the server.
            threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
            return match.group(1)
    raise AssertionError(f"gunicorn exited with {process.wait()}")


def test_two_server_processes_same_key_make_one_provider_call(two_servers, api_key, fake_provider):
    headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": "race-2", "Content-Type": "application/json"}
    body = json.dumps(CHARGE)

    def send(i):
        response = requests.post(f"{two_servers[i % 2]}/api/v1/charges", data=body, headers=headers, timeout=60)
        return response.status_code, response.headers.get("Idempotent-Replayed"), response.json(), i % 2

    answers = run_concurrently(30, send, release_when=hold_provider(fake_provider, 29))
    assert sorted(status for status, *_ in answers) == [201] + [409] * 29
    assert {server for status, _, _, server in answers if status == 409} == {0, 1}
    assert sum(fake_provider.calls_by_key.values()) == 1 and len(fake_provider.charges) == 1
    created = next(body for status, _, body, _ in answers if status == 201)
    for url in two_servers:
        replay = requests.post(f"{url}/api/v1/charges", data=body, headers=headers, timeout=30)
        assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json() == created
    assert IdempotencyRecord.objects.get().response_status == 201


def test_concurrent_refunds_never_exceed_the_charge(pay_provider, api_key, fake_provider, api_client):
    charge = api_client.post("/api/v1/charges", data={**CHARGE, "amount": 1000}, format="json",
                             HTTP_IDEMPOTENCY_KEY="to-refund").json()

    def send(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        response = client.post(f"/api/v1/charges/{charge['id']}/refunds", data={"amount": 300}, format="json",
                               HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)
        return response.status_code, response.json()

    answers = run_concurrently(12, send)
    assert sorted(status for status, _ in answers) == [201] * 3 + [400] * 9
    assert {body["error"]["type"] for status, body in answers if status == 400} == {"refund_exceeds_charge"}
    assert Refund.objects.filter(status="succeeded").count() == 3
    stored = Charge.objects.get()
    assert stored.amount_refunded == 900 and stored.status == "partially_refunded"
    assert fake_provider.charges[stored.provider_charge_id]["amount_refunded"] == 900
