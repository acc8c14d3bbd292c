"""Email over real processes: API -> worker -> sandbox (SendGrid's wire format) -> signed event
webhook -> relay -> worker -> the email's status."""

from __future__ import annotations

import pytest

from tests.support.processes import wait_until

pytestmark = pytest.mark.e2e


def send(flow, key: str, to: str):
    body = {"to": to, "from": "shop@example.test", "subject": "Your order",
            "text": "Thanks!", "provider": flow.provider.slug}
    return flow.api.post(f"{flow.stack.web_url}/api/v1/emails", json=body,
                         headers={"Idempotency-Key": key}, timeout=30)


def wait_for_email(flow, email_id: str, status: str) -> dict:
    def reached():
        email = flow.api.get(f"{flow.stack.web_url}/api/v1/emails/{email_id}", timeout=10).json()
        return email if email["status"] == status else None

    return wait_until(reached, timeout=20, interval=0.1, what=f"email {email_id} to be {status}")


def test_an_email_is_sent_once_and_marked_delivered_by_the_sandbox_webhook(flow):
    accepted = send(flow, "mail-1", "alice@example.test")
    assert accepted.status_code == 202, accepted.text
    email = accepted.json()
    assert email["status"] == "queued" and email["recipients"] == 1

    again = send(flow, "mail-1", "alice@example.test")
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == email["id"]

    delivered = wait_for_email(flow, email["id"], "delivered")
    assert delivered["provider_message_id"]
    assert {"processed", "delivered"} <= {event["type"] for event in delivered["events"]}
    assert "alice@example.test" not in str(delivered)  # the API shows a hash, never the address
    sends = flow.sandbox_stats()["emails"]["by_idempotency_key"]
    assert list(sends.values()) == [1]  # one send reached the provider


def test_a_bouncing_address_ends_bounced(flow):
    accepted = send(flow, "mail-2", "bounce@example.test")
    assert accepted.status_code == 202, accepted.text
    assert wait_for_email(flow, accepted.json()["id"], "bounced")["status"] == "bounced"
