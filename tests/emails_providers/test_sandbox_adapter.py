"""Never sent twice, against the real sandbox: its adapter sends the email's key on every attempt
and is retried by the client; SendGrid's (no deduplication) is tried once and says when the
outcome is unknown."""

from __future__ import annotations

import pytest
import requests

from integrations.adapters.email import DeliveryUnknown, email_event_types
from integrations.errors import ProviderUnavailable
from integrations.kinds import adapter_for
from integrations.kinds.sandbox import SandboxEmail
from tests.emails_providers.conftest import message


def plan(server, *faults: dict) -> None:
    answer = requests.post(server.url + "/_control/faults", json={"faults": list(faults)}, timeout=5)
    assert answer.status_code == 200, answer.text


def emails_stats(server) -> dict:
    return requests.get(server.url + "/_control/stats", timeout=5).json()["emails"]


def test_the_sandbox_accepts_a_send_with_the_emails_key(at_sandbox, sandbox_server):
    adapter = adapter_for(at_sandbox(), "email")

    result = adapter.send(message())

    assert isinstance(adapter, SandboxEmail) and adapter.deduplicates
    assert result.sent and result.provider_message_id
    assert emails_stats(sandbox_server)["by_idempotency_key"] == {"email-em_123": 1}


def test_an_outage_is_retried_with_the_same_key_and_sends_once(at_sandbox, sandbox_server):
    plan(sandbox_server, {"action": "error", "status": 503, "count": 2, "path": "/v3/"})

    result = adapter_for(at_sandbox(), "email").send(message())

    assert result.sent
    stats = emails_stats(sandbox_server)
    assert stats["total"] == 1 and stats["by_idempotency_key"] == {"email-em_123": 1}


def test_a_lost_answer_is_retried_and_replayed_not_sent_again(at_sandbox, sandbox_server):
    plan(sandbox_server, {"action": "drop", "path": "/v3/mail/send"})

    result = adapter_for(at_sandbox(), "email").send(message())

    assert result.sent and result.provider_message_id  # the replay's body carries the id
    assert emails_stats(sandbox_server)["total"] == 1


def test_a_send_repeated_later_with_the_same_key_is_the_same_message(at_sandbox, sandbox_server):
    adapter = adapter_for(at_sandbox(), "email")

    first, again = adapter.send(message()), adapter.send(message())

    assert first.provider_message_id == again.provider_message_id
    assert emails_stats(sandbox_server)["total"] == 1


def test_an_outage_past_the_attempts_is_unavailable(at_sandbox, sandbox_server):
    plan(sandbox_server, {"action": "error", "status": 503, "count": 3, "path": "/v3/"})

    with pytest.raises(ProviderUnavailable):
        adapter_for(at_sandbox(), "email").send(message())

    assert emails_stats(sandbox_server)["total"] == 0


def test_without_deduplication_a_lost_answer_is_delivery_unknown_after_one_attempt(at_sandbox, sandbox_server):
    # The SendGrid adapter at the sandbox: the same wire format, but no key and no retry.
    plan(sandbox_server, {"action": "drop", "path": "/v3/mail/send"})

    with pytest.raises(DeliveryUnknown):
        adapter_for(at_sandbox("sendgrid"), "email").send(message())

    assert emails_stats(sandbox_server)["total"] == 1  # it was sent, once; nobody sends it again


def test_without_deduplication_a_503_is_unavailable_and_nothing_was_sent(at_sandbox, sandbox_server):
    plan(sandbox_server, {"action": "error", "status": 503, "path": "/v3/"})

    with pytest.raises(ProviderUnavailable):
        adapter_for(at_sandbox("sendgrid"), "email").send(message())

    assert emails_stats(sandbox_server)["total"] == 0


def test_an_invalid_recipient_is_a_failed_result(at_sandbox):
    result = adapter_for(at_sandbox(), "email").send(message(to=("not-an-address",)))

    assert (result.status, result.failure_code) == ("failed", "invalid_recipient")


def test_a_key_reused_with_another_message_is_refused_with_the_sandboxs_reason(at_sandbox):
    adapter = adapter_for(at_sandbox(), "email")
    adapter.send(message())

    result = adapter.send(message(subject="Something else"))

    assert (result.status, result.failure_code) == ("failed", "idempotency_key_reused")
    assert "same parameters" in result.failure_message


def test_a_sandbox_event_is_normalised(at_sandbox):
    event = {"id": "evt_1", "object": "event", "type": "email.bounced", "created": 1764590000,
             "data": {"object": {"email_id": "em_123", "sg_message_id": "sbx123.sandbox0000.0",
                                 "recipient": "bounce@example.com", "event": "bounce", "timestamp": 1764590000}}}
    adapter = adapter_for(at_sandbox(), "email")

    data = adapter.parse_event(event)

    assert (data.type, data.email_id, data.provider_message_id, data.recipient) == (
        "bounced", "em_123", "sbx123", "bounce@example.com")
    assert adapter.parse_event({**event, "type": "charge.succeeded"}).type == ""
    assert "email.delivered" in adapter.event_types


def test_the_email_event_types_of_every_kind_are_listed_for_handler_registration():
    assert {"email.delivered", "bounce", "spamreport", "failed", "delivered"} <= email_event_types()
    assert "charge.succeeded" not in email_event_types()
