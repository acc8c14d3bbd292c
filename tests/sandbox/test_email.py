"""The sandbox's email capability: SendGrid's Mail Send, deduplicated by Idempotency-Key, faults
as for charges, and signed `email.<type>` events back, by recipient address."""

from __future__ import annotations

import time

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from sandbox.capabilities.email import story
from tests.sandbox.conftest import WEBHOOK_SECRET


def mail(*to: str, email_id: str = "em_1", **extra) -> dict:
    """A SendGrid v3 Mail Send body."""
    return {"personalizations": [{"to": [{"email": a} for a in to or ("ada@example.com",)]}],
            "from": {"email": "shop@example.com", "name": "Shop"}, "subject": "Hello",
            "content": [{"type": "text/plain", "value": "Hi"}], "custom_args": {"email_id": email_id}, **extra}


def events_of(receiver, count: int) -> list[dict]:
    deliveries = receiver.wait_for(count)
    for delivery in deliveries:
        Webhook(WEBHOOK_SECRET).verify(delivery.body, delivery.headers)  # raises unless signed right
    return [d.event for d in deliveries]


def test_a_send_is_accepted_with_202_and_an_x_message_id(client):
    response = client.post("/v3/mail/send", mail(), key="send-1")

    assert response.status_code == 202
    message_id = response.headers["X-Message-Id"]
    assert message_id and response.json() == {"message_id": message_id}


def test_the_same_key_sends_once_and_replays_the_answer(client, receiver, sandbox):
    first = client.post("/v3/mail/send", mail(), key="once")
    again = client.post("/v3/mail/send", mail(), key="once")

    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["message_id"] == first.headers["X-Message-Id"]
    stats = client.stats()["emails"]
    assert stats["total"] == 1 and stats["by_idempotency_key"] == {"once": 1}
    events_of(receiver, 2)  # processed, delivered: once
    assert sandbox.sandbox.webhooks.wait_idle(5) and len(receiver.deliveries) == 2


def test_a_delivered_email_gets_signed_processed_then_delivered_events(client, receiver):
    message_id = client.post("/v3/mail/send", mail("ada@example.com", email_id="em_42")).headers["X-Message-Id"]

    events = events_of(receiver, 2)

    assert [e["type"] for e in events] == ["email.processed", "email.delivered"]
    obj = events[1]["data"]["object"]
    assert obj["email_id"] == "em_42" and obj["recipient"] == "ada@example.com"
    assert obj["sg_message_id"].split(".")[0] == message_id and obj["event"] == "delivered"
    assert obj["sg_event_id"] and isinstance(obj["timestamp"], int)


@pytest.mark.parametrize(("address", "types"), [
    ("bounce@example.com", ["processed", "bounced"]),
    ("bounce+7@example.com", ["processed", "bounced"]),
    ("defer@example.com", ["processed", "deferred", "delivered"]),
    ("drop@example.com", ["dropped"]),
    ("complain@example.com", ["processed", "delivered", "complained"]),
    ("anyone@example.com", ["processed", "delivered"]),
])
def test_each_address_pattern_has_its_story(address, types):
    assert list(story(address)) == types


def test_a_bouncing_address_bounces_and_others_in_the_same_send_are_delivered(client, receiver):
    client.post("/v3/mail/send", mail("bounce@example.com", "ada@example.com"))

    events = events_of(receiver, 4)

    by_recipient = {}
    for event in events:
        by_recipient.setdefault(event["data"]["object"]["recipient"], []).append(event["type"])
    assert by_recipient == {"bounce@example.com": ["email.processed", "email.bounced"],
                            "ada@example.com": ["email.processed", "email.delivered"]}


@pytest.mark.parametrize(("body", "field"), [
    (mail("not-an-address"), "personalizations.0.to.0.email"),
    ({**mail(), "personalizations": []}, "personalizations"),
    ({**mail(), "from": {"email": "nope"}}, "from.email"),
    ({**mail(), "reply_to": "help@example.com"}, "reply_to.email"),
    ({**mail(), "subject": ""}, "subject"),
    ({**mail(), "content": []}, "content"),
])
def test_an_invalid_request_is_a_sendgrid_shaped_400_and_the_key_stays_usable(client, body, field):
    response = client.post("/v3/mail/send", body, key="bad-then-good")

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == field and error["message"]
    assert client.post("/v3/mail/send", mail(), key="bad-then-good").status_code == 202


def test_a_request_without_the_api_key_is_401(client, sandbox):
    assert requests.post(sandbox.url + "/v3/mail/send", json=mail(), timeout=5).status_code == 401


def test_two_503_faults_then_the_send_is_made_once(client):
    client.faults({"faults": [{"action": "error", "status": 503, "count": 2, "path": "/v3/mail/send"}]})

    statuses = [client.post("/v3/mail/send", mail(), key="retry-me").status_code for _ in range(3)]

    assert statuses == [503, 503, 202]
    assert client.stats()["emails"]["by_idempotency_key"] == {"retry-me": 1}


def test_a_dropped_answer_still_sends_and_the_retry_replays_it(client):
    client.faults({"faults": [{"action": "drop", "path": "/v3/"}]})
    with pytest.raises(requests.ConnectionError):
        client.post("/v3/mail/send", mail(), key="lost-answer")

    again = client.post("/v3/mail/send", mail(), key="lost-answer")

    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert client.stats()["emails"]["total"] == 1


def test_a_rate_limit_fault_is_429_with_retry_after_and_sends_nothing(client):
    response = client.post("/v3/mail/send", mail(), headers={"X-Sandbox-Fault": "status=429, retry_after=3"})

    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert client.stats()["emails"]["total"] == 0


def test_a_reset_forgets_sends_and_cancels_pending_events(client, receiver, sandbox):
    client.post("/v3/mail/send", mail())
    client.post("/_control/reset")

    assert client.stats()["emails"] == {"total": 0, "without_idempotency_key": 0, "by_idempotency_key": {},
                                        "recipients": 0, "events": {}}
    time.sleep(0.5)  # past the first event's delay
    assert receiver.deliveries == []
