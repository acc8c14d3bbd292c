"""The sendgrid kind's email adapter: Mail Send's wire format, its errors as clear results, one
attempt per send (SendGrid does not deduplicate), and its Event Webhook items normalised."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
import responses

from integrations import circuit
from integrations.adapters.email import DeliveryUnknown, SendResult
from integrations.credentials import credential_rotate
from integrations.errors import CredentialMissing, ProviderUnavailable
from integrations.kinds import adapter_for
from integrations.kinds.sendgrid import SendGridEmail
from integrations.models import Provider
from tests.emails_providers.conftest import SENDGRID_URL, message
from tests.support import webhook_signing as signing
from tests.support.local_server import SilentServer, closed_port
from webhooks.models import WebhookEvent

SEND = f"{SENDGRID_URL}/v3/mail/send"


def sendgrid_errors(*errors: tuple[str, str | None]) -> dict:
    return {"errors": [{"message": text, "field": field, "help": None} for text, field in errors]}


@responses.activate
def test_a_send_posts_the_v3_mail_send_json_with_the_bearer_key(sendgrid):
    responses.post(SEND, status=202, body=b"", headers={"X-Message-Id": "sgid_abc123"})

    result = adapter_for(sendgrid, "email").send(message(cc=("cy@example.com",), reply_to="help@example.com"))

    assert result == SendResult(status="sent", provider_message_id="sgid_abc123")
    (call,) = responses.calls
    assert call.request.headers["Authorization"] == "Bearer SG.test-key"
    assert "Idempotency-Key" not in call.request.headers  # SendGrid ignores it: never pretend
    assert json.loads(call.request.body) == {
        "personalizations": [{"to": [{"email": "ada@example.com"}], "cc": [{"email": "cy@example.com"}]}],
        "from": {"email": "shop@example.com", "name": "Shop"},
        "reply_to": {"email": "help@example.com"},
        "subject": "Your order",
        "content": [{"type": "text/plain", "value": "Thanks!"}, {"type": "text/html", "value": "<p>Thanks!</p>"}],
        "custom_args": {"email_id": "em_123"},
    }


@responses.activate
def test_empty_cc_bcc_and_a_missing_part_are_left_out(sendgrid):
    responses.post(SEND, status=202, headers={"X-Message-Id": "m"})

    adapter_for(sendgrid, "email").send(message(html="", text="only text"))

    body = json.loads(responses.calls[0].request.body)
    assert body["personalizations"] == [{"to": [{"email": "ada@example.com"}]}]
    assert body["content"] == [{"type": "text/plain", "value": "only text"}] and "reply_to" not in body


@pytest.mark.parametrize(("status", "body", "code"), [
    (400, sendgrid_errors(("Does not contain a valid address.", "personalizations.0.to.0.email")),
     "invalid_recipient"),
    (400, sendgrid_errors(("The from email does not contain a valid address.", "from.email")), "invalid_sender"),
    (400, sendgrid_errors(("The subject is required.", "subject")), "invalid_request"),
    (413, sendgrid_errors(("Payload too large", None)), "message_too_large"),
])
@responses.activate
def test_a_refusal_is_a_failed_result_with_a_clear_code(sendgrid, status, body, code):
    responses.post(SEND, status=status, json=body)

    result = adapter_for(sendgrid, "email").send(message())

    assert (result.status, result.failure_code) == ("failed", code)
    assert result.failure_message == body["errors"][0]["message"]
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 503])
@responses.activate
def test_our_configuration_or_a_provider_outage_is_unavailable_and_not_retried_by_the_client(sendgrid, status):
    # 401/403 (a revoked key) and 404 (a wrong base URL) are ours to fix: the email waits.
    responses.post(SEND, status=status, json=sendgrid_errors(("nope", None)), headers={"Retry-After": "0"})

    with pytest.raises(ProviderUnavailable) as err:
        adapter_for(sendgrid, "email").send(message())

    assert err.value.result.error_code == f"HTTP_{status}"
    assert len(responses.calls) == 1  # no key: the client never repeats the POST


@responses.activate
def test_a_connect_timeout_certainly_did_not_arrive(sendgrid):
    responses.post(SEND, body=requests.exceptions.ConnectTimeout("connect timed out"))

    with pytest.raises(ProviderUnavailable) as err:
        adapter_for(sendgrid, "email").send(message())

    assert err.value.result.error_code == "ETIMEDOUT" and err.value.result.maybe_delivered is False


@responses.activate
def test_a_read_timeout_is_delivery_unknown(sendgrid):
    responses.post(SEND, body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(DeliveryUnknown) as err:
        adapter_for(sendgrid, "email").send(message())

    assert err.value.result.error_code == "ETIMEDOUT" and len(responses.calls) == 1


def test_a_refused_connection_is_unavailable_over_real_sockets(make_sendgrid):
    provider = make_sendgrid(f"http://127.0.0.1:{closed_port()}")

    with pytest.raises(ProviderUnavailable) as err:
        adapter_for(provider, "email").send(message())

    assert err.value.result.error_code == "ECONN" and not err.value.result.maybe_delivered


def test_a_server_that_never_answers_is_delivery_unknown_over_real_sockets(make_sendgrid):
    with SilentServer() as server:
        provider = make_sendgrid(server.url, read_timeout=0.2)

        with pytest.raises(DeliveryUnknown):
            adapter_for(provider, "email").send(message())

        assert server.accepted == 1


def test_an_open_circuit_is_unavailable_not_unknown(sendgrid, monkeypatch):
    monkeypatch.setattr(circuit, "circuit_permit", lambda **kwargs: None)

    with pytest.raises(ProviderUnavailable) as err:
        adapter_for(sendgrid, "email").send(message())

    assert err.value.result.error_code == "CIRCUIT_OPEN"


def test_a_provider_without_a_key_raises_credential_missing(db):
    provider = Provider.objects.create(slug="bare", name="Bare", kind="sendgrid", base_url=SENDGRID_URL)

    with pytest.raises(CredentialMissing):
        adapter_for(provider, "email").send(message())


def test_the_default_sender_is_the_providers_email_from(sendgrid):
    adapter = adapter_for(sendgrid, "email")
    assert adapter.default_from == ""
    sendgrid.email_from = "Shop <shop@example.com>"
    sendgrid.save()
    assert adapter_for(sendgrid, "email").default_from == "Shop <shop@example.com>"


def test_the_adapter_says_it_does_not_deduplicate(sendgrid):
    adapter = adapter_for(sendgrid, "email")
    assert isinstance(adapter, SendGridEmail) and adapter.deduplicates is False
    assert {"delivered", "bounce", "spamreport"} <= adapter.event_types


# --- events -------------------------------------------------------------------------------
EVENT = {"email": "ada@example.com", "timestamp": 1764590000, "event": "delivered",
         "sg_event_id": "sg_evt_1", "sg_message_id": "sgid_abc123.filterdrecv-p3mdw1-756b745b58-kj5qz-18-5F.0",
         "email_id": "em_123", "smtp-id": "<x@sendgrid>", "response": "250 OK"}


@pytest.mark.parametrize(("event", "type_"), [
    ("processed", "processed"), ("delivered", "delivered"), ("deferred", "deferred"), ("bounce", "bounced"),
    ("dropped", "dropped"), ("spamreport", "complained"), ("open", "opened"), ("click", "clicked"),
    ("unsubscribe", ""), ("something_new", ""),
])
def test_an_event_item_is_normalised(sendgrid, event, type_):
    data = adapter_for(sendgrid, "email").parse_event({**EVENT, "event": event})

    assert data.type == type_
    assert (data.email_id, data.provider_message_id, data.recipient) == ("em_123", "sgid_abc123", "ada@example.com")
    assert data.occurred_at == datetime.fromtimestamp(1764590000, tz=UTC)


def test_an_event_without_the_usual_fields_parses_to_blanks(sendgrid):
    data = adapter_for(sendgrid, "email").parse_event({"event": "delivered", "timestamp": "soon"})

    assert (data.type, data.email_id, data.provider_message_id, data.occurred_at) == ("delivered", "", "", None)


def test_a_signed_event_batch_is_stored_per_item_and_each_parses(sendgrid, client):
    key = signing.SendGridKey()  # a real P-256 key pair; SendGrid shows the public half
    credential_rotate(provider=sendgrid, purpose="webhook_public_key", value=key.public_b64)
    body = signing.body_of([EVENT, {**EVENT, "event": "open", "sg_event_id": "sg_evt_2"}])

    answer = client.post(f"/webhooks/{sendgrid.slug}/", data=body, content_type="application/json",
                         **signing.as_meta(key.headers(body=body)))

    assert answer.status_code == 200, answer.content
    adapter = adapter_for(sendgrid, "email")
    parsed = {e.event_id: adapter.parse_event(e.payload) for e in WebhookEvent.objects.all()}
    assert {k: v.type for k, v in parsed.items()} == {"sg_evt_1": "delivered", "sg_evt_2": "opened"}
