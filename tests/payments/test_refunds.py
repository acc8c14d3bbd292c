"""Refunds: partial and full, never more than what is left, replayed like charges."""

from __future__ import annotations

import pytest

from payments.models import Charge, Refund

from .conftest import CHARGE

pytestmark = pytest.mark.django_db


@pytest.fixture
def refund(api_client):
    def post(charge_id, amount=None, key="r1"):
        body = {} if amount is None else {"amount": amount}
        return api_client.post(f"/api/v1/charges/{charge_id}/refunds", data=body, format="json",
                               HTTP_IDEMPOTENCY_KEY=key)

    return post


def test_partial_then_full_refund(post_charge, refund, api_client, fake_provider):
    charge = post_charge().json()
    first = refund(charge["id"], 500, key="r1")
    assert first.status_code == 201
    body = first.json()
    assert body["id"].startswith("re_") and body["amount"] == 500 and body["status"] == "succeeded"
    assert body["charge"] == charge["id"]
    after = api_client.get(f"/api/v1/charges/{charge['id']}").json()
    assert after["status"] == "partially_refunded" and after["amount_refunded"] == 500

    rest = refund(charge["id"], key="r2")  # no amount: everything that is left
    assert rest.status_code == 201 and rest.json()["amount"] == 1000
    after = api_client.get(f"/api/v1/charges/{charge['id']}").json()
    assert after["status"] == "refunded" and after["amount_refunded"] == 1500
    assert fake_provider.charges[charge["provider_charge_id"]]["amount_refunded"] == 1500
    history = list(Charge.objects.get().history.values_list("to_status", flat=True))
    assert history == ["pending", "succeeded", "partially_refunded", "refunded"]


def test_refund_more_than_left_is_400_and_not_stored(post_charge, refund):
    charge = post_charge().json()
    assert refund(charge["id"], 1000, key="a").status_code == 201
    too_much = refund(charge["id"], 501, key="b")
    assert too_much.status_code == 400
    assert too_much.json()["error"]["type"] == "refund_exceeds_charge"
    assert too_much.json()["error"]["param"] == "amount"
    # Not stored: the same key with an amount that fits goes through.
    assert refund(charge["id"], 500, key="b").status_code == 201
    assert refund(charge["id"], key="c").json()["error"]["type"] == "charge_not_refundable"


def test_refund_replays_with_the_same_key(post_charge, refund, fake_provider):
    charge = post_charge().json()
    first = refund(charge["id"], 300, key="same")
    again = refund(charge["id"], 300, key="same")
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert Refund.objects.count() == 1 and len(fake_provider.refunds) == 1


def test_declined_charge_cannot_be_refunded(post_charge, refund):
    charge = post_charge({**CHARGE, "source": "tok_chargeDeclined"}).json()
    response = refund(charge["id"], 100)
    assert response.status_code == 400 and response.json()["error"]["type"] == "charge_not_refundable"


@pytest.mark.parametrize("amount", [0, -1, "5", 1.5])
def test_refund_amount_validation(post_charge, refund, amount):
    charge = post_charge().json()
    response = refund(charge["id"], amount)
    assert response.status_code == 400 and response.json()["error"]["param"] == "amount"


def test_refund_during_outage_is_503_then_resumes_with_the_same_key(post_charge, refund, fake_provider):
    charge = post_charge().json()
    fake_provider.mode = "down"
    assert refund(charge["id"], 400, key="later").status_code == 503
    pending = Refund.objects.get()
    assert pending.status == "pending"
    # The pending refund still holds its amount: nobody can refund past it meanwhile.
    assert refund(charge["id"], 1101, key="other").json()["error"]["type"] == "refund_exceeds_charge"
    fake_provider.mode = "ok"
    done = refund(charge["id"], 400, key="later")
    assert done.status_code == 201 and done.json()["id"] == pending.id
    assert len(fake_provider.refunds) == 1
    assert {r["key"] for r in fake_provider.requests if r["path"] == "/v1/refunds"} == {
        pending.outbound_idempotency_key}
