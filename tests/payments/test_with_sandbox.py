"""The sandbox adapter against the project's own sandbox provider, over real HTTP."""

from __future__ import annotations

import time

import pytest
import requests
from django.test import override_settings

from payments.models import Charge
from payments.tasks import complete_stale
from sandbox.api import Sandbox, SandboxConfig
from sandbox.server import SandboxServer

from .conftest import CHARGE

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox_provider(pay_provider):
    # The `provider` fixture's api_key credential is what the sandbox expects; no webhooks.
    server = SandboxServer(Sandbox(SandboxConfig(api_key="sk_test_provider_secret_123")), port=0).start()
    pay_provider.base_url = server.url
    pay_provider.save()
    yield server
    server.stop()


def stats(server) -> dict:
    return requests.get(f"{server.url}/_control/stats", timeout=5).json()


def test_charge_decline_and_refund_through_the_sandbox(sandbox_provider, post_charge, api_client):
    created = post_charge(key="sbx-1")
    assert created.status_code == 201
    charge = created.json()
    assert charge["status"] == "succeeded" and charge["provider_charge_id"].startswith("ch_")
    assert post_charge(key="sbx-1")["Idempotent-Replayed"] == "true"

    declined = post_charge({**CHARGE, "source": "tok_chargeDeclinedInsufficientFunds"}, key="sbx-2")
    assert declined.status_code == 402
    assert declined.json()["failure_code"] == "insufficient_funds"

    refund = api_client.post(f"/api/v1/charges/{charge['id']}/refunds", data={"amount": 500}, format="json",
                             HTTP_IDEMPOTENCY_KEY="sbx-r")
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded"

    counts = stats(sandbox_provider)
    outbound = Charge.objects.get(pk=charge["id"]).outbound_idempotency_key
    assert counts["charges"]["by_idempotency_key"][outbound] == 1
    assert counts["charges"]["total"] == 2 and counts["refunds"]["total"] == 1


@override_settings(PAYMENTS_COMPLETER_STALE_SECONDS=0)
def test_a_charge_pending_at_the_provider_is_finished_by_the_completer(sandbox_provider, post_charge):
    created = post_charge({**CHARGE, "source": "tok_pending_50"}, key="sbx-p")
    assert created.status_code == 201 and created.json()["status"] == "pending"
    charge = Charge.objects.get()
    assert charge.provider_charge_id  # kept while pending, so the completer retrieves it
    deadline = time.monotonic() + 10
    while Charge.objects.get().status == "pending":  # the sandbox settles it ~50 ms later
        assert time.monotonic() < deadline, "the completer never saw the charge settle"
        complete_stale()
    assert Charge.objects.get().status == "succeeded"
    assert stats(sandbox_provider)["charges"]["total"] == 1
