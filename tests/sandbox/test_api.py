"""The sandbox's Stripe-like API over real HTTP: auth, charges, idempotency, refunds."""

from __future__ import annotations

import threading
import time

import requests

from tests.sandbox.conftest import API_KEY


def test_requests_without_the_api_key_get_401_and_change_nothing(client, sandbox):
    anonymous = requests.post(f"{sandbox.url}/v1/charges", json={"amount": 1, "currency": "usd",
                                                                  "source": "tok_visa"}, timeout=5)
    wrong = requests.get(f"{sandbox.url}/v1/records", headers={"Authorization": "Bearer sk_wrong"}, timeout=5)
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"
    assert API_KEY not in wrong.text
    assert client.stats()["charges"]["total"] == 0


def test_a_visa_charge_succeeds_with_a_stripe_like_body_and_can_be_fetched(client):
    response = client.charge(key="k-1", amount=2500, currency="EUR", description="Order 7",
                             metadata={"order": "7", "items": 3})
    assert response.status_code == 200
    charge = response.json()
    assert charge["id"].startswith("ch_") and charge["object"] == "charge"
    assert (charge["amount"], charge["currency"], charge["status"]) == (2500, "eur", "succeeded")
    assert charge["paid"] is True and charge["refunded"] is False and charge["amount_refunded"] == 0
    assert charge["metadata"] == {"order": "7", "items": "3"}
    assert charge["description"] == "Order 7" and isinstance(charge["created"], int)
    fetched = client.get(f"/v1/charges/{charge['id']}")
    assert fetched.status_code == 200 and fetched.json() == charge


def test_the_same_key_and_body_replay_the_same_charge_once(client):
    first = client.charge(key="order-42")
    again = client.post("/v1/charges", {"source": "tok_visa", "currency": "usd", "amount": 1000},
                        key="order-42")  # same parameters, different key order
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    stats = client.stats()
    assert stats["charges"]["by_idempotency_key"] == {"order-42": 1}
    assert stats["charges"]["total"] == 1 and stats["idempotent_replays"] == 1


def test_the_same_key_with_other_parameters_is_a_400_and_makes_no_charge(client):
    client.charge(key="order-43")
    other = client.charge(key="order-43", amount=999)
    elsewhere = client.post("/v1/refunds", {"charge": "ch_x"}, key="order-43")
    for response in (other, elsewhere):
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "idempotency_error"
    assert client.stats()["charges"]["total"] == 1


def test_concurrent_requests_with_one_key_make_one_charge(client):
    results = []
    barrier = threading.Barrier(8)

    def call():
        barrier.wait()
        results.append(client.charge(key="racing", source="tok_delay_150"))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert {r.status_code for r in results} == {200}
    assert len({r.json()["id"] for r in results}) == 1
    stats = client.stats()
    assert stats["charges"]["by_idempotency_key"] == {"racing": 1}
    assert stats["idempotent_replays"] == 7


def test_a_declined_token_is_a_402_card_error_and_a_failed_charge(client):
    response = client.charge(key="decline-1", source="tok_chargeDeclined")
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["type"] == "card_error" and error["code"] == "card_declined"
    assert error["decline_code"] == "generic_decline" and error["message"]
    charge = client.get(f"/v1/charges/{error['charge']}").json()
    assert charge["status"] == "failed" and charge["paid"] is False
    assert charge["failure_code"] == "card_declined"
    replay = client.charge(key="decline-1", source="tok_chargeDeclined")
    assert replay.status_code == 402 and replay.json() == response.json()
    assert client.stats()["charges"] == {"total": 1, "succeeded": 0, "failed": 1, "pending": 0,
                                         "without_idempotency_key": 0,
                                         "by_idempotency_key": {"decline-1": 1}}


def test_insufficient_funds_carries_its_decline_code(client):
    response = client.charge(source="tok_chargeDeclinedInsufficientFunds")
    assert response.status_code == 402
    assert response.json()["error"]["decline_code"] == "insufficient_funds"


def test_a_delay_token_answers_after_that_many_milliseconds(client):
    started = time.monotonic()
    response = client.charge(source="tok_delay_300")
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    assert time.monotonic() - started >= 0.3


def test_a_pending_token_answers_pending_and_settles_to_succeeded_later(client, receiver):
    charge = client.charge(source="tok_pending_200").json()
    assert charge["status"] == "pending" and charge["paid"] is False
    (delivery,) = receiver.wait_for(1)
    event = delivery.event
    assert event["type"] == "charge.succeeded" and event["data"]["object"]["id"] == charge["id"]
    assert event["data"]["object"]["status"] == "succeeded"
    assert client.get(f"/v1/charges/{charge['id']}").json()["status"] == "succeeded"
    assert client.stats()["charges"]["succeeded"] == 1


def test_invalid_parameters_are_400s_that_do_not_burn_the_key(client):
    cases = [
        ({"amount": 0}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"currency": "dollars"}, "currency"),
        ({"source": "tok_unknown"}, "source"),
        ({"metadata": {"a": {"nested": 1}}}, "metadata[a]"),
        ({"captured": True}, "captured"),
    ]
    for params, param in cases:
        response = client.charge(key="fix-me", **params)
        assert response.status_code == 400, params
        assert response.json()["error"]["param"] == param
    assert client.charge(key="fix-me").status_code == 200
    assert client.stats()["charges"]["by_idempotency_key"] == {"fix-me": 1}


def test_malformed_bodies_and_keys_get_clear_400s(client, sandbox):
    bad_json = client.session.post(f"{sandbox.url}/v1/charges", data=b"{nope",
                                   headers={"Content-Type": "application/json"}, timeout=5)
    not_object = client.post("/v1/charges", [1, 2])
    long_key = client.charge(key="k" * 256)
    for response in (bad_json, not_object, long_key):
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_stripe_form_encoding_is_accepted(client, sandbox):
    response = client.session.post(
        f"{sandbox.url}/v1/charges", timeout=5,
        data={"amount": "700", "currency": "usd", "source": "tok_mastercard", "metadata[order]": "9"})
    assert response.status_code == 200
    assert response.json()["amount"] == 700 and response.json()["metadata"] == {"order": "9"}


def test_unknown_routes_methods_and_charges_are_404_and_405(client):
    assert client.get("/v1/charges/ch_missing").status_code == 404
    assert client.get("/v1/charges/ch_missing").json()["error"]["code"] == "resource_missing"
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/charges").status_code == 405
    put = client.session.put(client.base_url + "/v1/charges", json={}, timeout=5)
    assert put.status_code == 405 and put.json()["error"]["type"] == "invalid_request_error"


def test_a_body_over_one_mebibyte_is_refused_with_413(client):
    response = client.post("/v1/charges", {"amount": 1, "description": "x" * (1024 * 1024)})
    assert response.status_code == 413


def test_partial_then_full_refunds_never_exceed_the_charge(client):
    charge = client.charge(amount=1000).json()
    partial = client.post("/v1/refunds", {"charge": charge["id"], "amount": 300}, key="r-1")
    assert partial.status_code == 200
    refund = partial.json()
    assert refund["id"].startswith("re_") and refund["object"] == "refund"
    assert (refund["amount"], refund["charge"], refund["status"]) == (300, charge["id"], "succeeded")
    too_much = client.post("/v1/refunds", {"charge": charge["id"], "amount": 701}, key="r-2")
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "amount_too_large"
    rest = client.post("/v1/refunds", {"charge": charge["id"]}, key="r-3")
    assert rest.json()["amount"] == 700
    again = client.post("/v1/refunds", {"charge": charge["id"]}, key="r-4")
    assert again.status_code == 400 and again.json()["error"]["code"] == "charge_already_refunded"
    fetched = client.get(f"/v1/charges/{charge['id']}").json()
    assert fetched["amount_refunded"] == 1000 and fetched["refunded"] is True
    assert client.get(f"/v1/refunds/{refund['id']}").json() == refund
    # The refused attempt did not burn its key.
    assert client.post("/v1/refunds", {"charge": charge["id"], "amount": 701}, key="r-2").status_code == 400


def test_a_refund_replayed_with_its_key_refunds_once(client):
    charge = client.charge(amount=1000).json()
    first = client.post("/v1/refunds", {"charge": charge["id"], "amount": 100}, key="refund-once")
    second = client.post("/v1/refunds", {"charge": charge["id"], "amount": 100}, key="refund-once")
    assert second.json() == first.json() and second.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"/v1/charges/{charge['id']}").json()["amount_refunded"] == 100


def test_concurrent_refunds_with_different_keys_never_refund_more_than_the_charge(client):
    charge = client.charge(amount=1000).json()
    statuses = []
    barrier = threading.Barrier(10)

    def refund(i):
        barrier.wait()
        statuses.append(client.post("/v1/refunds", {"charge": charge["id"], "amount": 300},
                                    key=f"par-{i}").status_code)

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(statuses) == [200] * 3 + [400] * 7
    assert client.get(f"/v1/charges/{charge['id']}").json()["amount_refunded"] == 900


def test_refunding_a_failed_or_unknown_charge_is_refused(client):
    declined = client.charge(source="tok_chargeDeclined").json()["error"]["charge"]
    assert client.post("/v1/refunds", {"charge": declined}).json()["error"]["code"] == "charge_not_refundable"
    assert client.post("/v1/refunds", {"charge": "ch_nope"}).json()["error"]["code"] == "resource_missing"


def test_reset_forgets_charges_keys_and_counters(client):
    charge = client.charge(key="before-reset").json()
    assert client.session.post(client.base_url + "/_control/reset", timeout=5).status_code == 200
    assert client.get(f"/v1/charges/{charge['id']}").status_code == 404
    assert client.stats()["charges"]["total"] == 0
    assert client.charge(key="before-reset", amount=5).status_code == 200
