"""Webhooks back: signed with Standard Webhooks, retried, duplicated, late, reordered."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook

from sandbox.webhooks import sign, validate_secret
from tests.sandbox.conftest import WEBHOOK_SECRET


def test_a_charge_posts_a_charge_succeeded_event_signed_with_standard_webhooks(client, receiver):
    charge = client.charge(key="hook-1").json()
    (delivery,) = receiver.wait_for(1)
    # The reference implementation verifies it (it also checks the timestamp tolerance).
    verified = Webhook(WEBHOOK_SECRET).verify(delivery.body, delivery.headers)
    assert verified["type"] == "charge.succeeded"
    event = delivery.event
    assert event["id"].startswith("evt_") and delivery.headers["webhook-id"] == event["id"]
    assert event["data"]["object"] == charge and isinstance(event["created"], int)
    assert abs(int(delivery.headers["webhook-timestamp"]) - time.time()) < 5


def test_a_declined_charge_posts_charge_failed_and_a_refund_charge_refunded(client, receiver):
    client.charge(source="tok_chargeDeclined")
    charge = client.charge(amount=800).json()
    client.post("/v1/refunds", {"charge": charge["id"], "amount": 300})
    events = [d.event for d in receiver.wait_for(3)]
    assert sorted(e["type"] for e in events) == ["charge.failed", "charge.refunded", "charge.succeeded"]
    refunded = next(e for e in events if e["type"] == "charge.refunded")["data"]["object"]
    assert refunded["id"] == charge["id"] and refunded["amount_refunded"] == 300


def test_a_replayed_request_sends_no_second_event(client, receiver, sandbox):
    client.charge(key="once")
    client.charge(key="once")
    receiver.wait_for(1)
    assert sandbox.sandbox.webhooks.wait_idle(5)
    assert len(receiver.deliveries) == 1
    assert client.stats()["webhooks"]["enqueued"] == 1


def test_a_failing_receiver_gets_the_same_event_again_with_backoff(client, receiver, sandbox):
    receiver.script = [500, 503]
    client.charge()
    deliveries = receiver.wait_for(3)
    assert sandbox.sandbox.webhooks.wait_idle(5)  # the sender has recorded the last answer
    assert len({d.headers["webhook-id"] for d in deliveries}) == 1
    assert deliveries[2].received_at - deliveries[0].received_at >= 0.05 + 0.1
    for delivery in deliveries:
        Webhook(WEBHOOK_SECRET).verify(delivery.body, delivery.headers)
    stats = client.stats()["webhooks"]
    assert (stats["delivered"], stats["failed_attempts"]) == (1, 2)
    assert [entry["attempt"] for entry in stats["log"]] == [1, 2, 3]


def test_delivery_gives_up_after_the_maximum_attempts(client, receiver, sandbox):
    receiver.script = [500] * 10
    client.charge()
    receiver.wait_for(4)
    assert sandbox.sandbox.webhooks.wait_idle(5)
    stats = client.stats()["webhooks"]
    assert (stats["attempts"], stats["given_up"], stats["delivered"]) == (4, 1, 0)


def test_a_duplicate_fault_delivers_the_same_event_twice(client, receiver):
    client.faults({"faults": [{"action": "webhook_duplicate"}]})
    client.charge()
    client.charge()
    deliveries = receiver.wait_for(3)
    ids = [d.headers["webhook-id"] for d in deliveries]
    assert len(ids) == 3 and len(set(ids)) == 2


def test_a_late_fault_delivers_after_the_delay(client, receiver):
    client.faults({"faults": [{"action": "webhook_delay", "ms": 500}]})
    sent = time.monotonic()
    client.charge()
    (delivery,) = receiver.wait_for(1)
    assert delivery.received_at - sent >= 0.5
    Webhook(WEBHOOK_SECRET).verify(delivery.body, delivery.headers)


def test_a_reorder_fault_delivers_a_refund_before_its_charge(client, receiver):
    client.faults({"faults": [{"action": "webhook_reorder", "count": 2}]})
    charge = client.charge(amount=500).json()
    client.post("/v1/refunds", {"charge": charge["id"]})
    events = [d.event for d in receiver.wait_for(2)]
    assert [e["type"] for e in events] == ["charge.refunded", "charge.succeeded"]
    assert events[1]["data"]["object"]["amount_refunded"] == 0


def test_a_reorder_batch_that_never_fills_is_released_after_max_wait(client, receiver):
    client.faults({"faults": [{"action": "webhook_reorder", "count": 3, "max_wait_ms": 200}]})
    client.charge()
    (delivery,) = receiver.wait_for(1)
    assert delivery.event["type"] == "charge.succeeded"


def test_without_a_webhook_url_nothing_is_sent(client, receiver, sandbox):
    client.session.post(client.base_url + "/_control/config", json={"webhook_url": ""}, timeout=5)
    client.charge()
    assert sandbox.sandbox.webhooks.wait_idle(5)
    stats = client.stats()["webhooks"]
    assert (stats["enqueued"], stats["skipped_no_url"], stats["attempts"]) == (1, 1, 0)
    assert receiver.deliveries == []


def test_config_changes_apply_to_the_next_delivery_and_never_echo_the_secret(client, receiver):
    new_secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    response = client.session.post(client.base_url + "/_control/config", timeout=5,
                                   json={"webhook_secret": new_secret, "webhook_max_attempts": 2})
    assert response.status_code == 200 and response.json()["webhook_max_attempts"] == 2
    assert new_secret not in response.text and response.json()["webhook_secret_set"] is True
    client.charge()
    (delivery,) = receiver.wait_for(1)
    Webhook(new_secret).verify(delivery.body, delivery.headers)
    with pytest.raises(Exception):  # noqa: B017 - the old secret no longer verifies
        Webhook(WEBHOOK_SECRET).verify(delivery.body, delivery.headers)


@pytest.mark.parametrize("body", [{"webhook_secret": "plain"}, {"webhook_url": "ftp://x"},
                                  {"webhook_max_attempts": 0}, {"api_key": ""}, {"other": 1}])
def test_invalid_config_is_refused(client, body):
    response = client.session.post(client.base_url + "/_control/config", json=body, timeout=5)
    assert response.status_code == 400


def test_signatures_match_the_reference_implementation():
    body = b'{"id":"evt_1","type":"charge.succeeded"}'
    expected = Webhook(WEBHOOK_SECRET).sign("evt_1", _datetime(1700000000), body.decode())
    assert sign(secret=WEBHOOK_SECRET, msg_id="evt_1", timestamp=1700000000, body=body) == expected


@pytest.mark.parametrize("secret", ["whsec_", "sk_live_x", "whsec_not base64!"])
def test_unusable_secrets_are_refused(secret):
    with pytest.raises(ValueError):
        validate_secret(secret)


def _datetime(ts: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)
