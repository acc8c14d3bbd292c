"""Exactly once under real concurrency, on PostgreSQL: identical requests and duplicate tasks in threads."""

from __future__ import annotations

import threading

import pytest
from rest_framework.test import APIClient

from emails import tasks as email_tasks
from emails.models import Email
from tests.payments.test_concurrency import run_concurrently

from .conftest import EMAIL, run_tasks

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_20_identical_requests_at_once_make_one_email_and_one_send(api_key, mail_provider, tasks, outbox):
    def send(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        response = client.post("/api/v1/emails", data=EMAIL, format="json", HTTP_IDEMPOTENCY_KEY="race")
        return response.status_code, response.get("Idempotent-Replayed"), response.json()

    answers = run_concurrently(20, send)
    created = [body for status, replayed, body in answers if status == 202 and not replayed]
    assert len(created) == 1
    assert {status for status, _, _ in answers} <= {202, 409}
    assert all(body == created[0] for status, _, body in answers if status == 202)
    assert Email.objects.count() == 1 and len(tasks) == 1

    # The queued task, duplicated as a sweeper or a broker could, sends once.
    tasks.extend(tasks * 9)
    assert run_tasks(tasks) == ["sent"] + [None] * 9
    assert len(outbox.calls) == 1


def test_20_workers_running_the_same_email_at_once_send_it_once(api_key, mail_provider, tasks, outbox,
                                                                 api_client):
    email_id = api_client.post("/api/v1/emails", data=EMAIL, format="json", HTTP_IDEMPOTENCY_KEY="one").json()["id"]
    outbox.gate = threading.Event()  # hold the first send at the provider until the others have given up

    def release(answers):
        if len(answers) >= 19:
            outbox.gate.set()
            return True
        return False

    answers = run_concurrently(20, lambda _: email_tasks.send(email_id), release_when=release)
    assert sorted(answers, key=str) == [None] * 19 + ["sent"]
    assert len(outbox.calls) == 1 and Email.objects.get().attempts == 1
