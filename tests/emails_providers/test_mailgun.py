"""The mailgun kind: the Messages API's form and basic auth, its errors as clear results, and its
signed event webhooks (HMAC of timestamp + token in the body) verified and normalised."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
import responses

from integrations.adapters.email import SendResult
from integrations.errors import ProviderUnavailable
from integrations.kinds import adapter_for, get_kind
from tests.emails_providers.conftest import MAILGUN_SIGNING_KEY, MAILGUN_URL, message
from webhooks.errors import InvalidPayload, InvalidSignature, TimestampOutOfTolerance
from webhooks.models import WebhookEvent
from webhooks.schemes.mailgun import MailgunScheme

SEND = f"{MAILGUN_URL}/messages"
pytestmark = pytest.mark.django_db  # the scheme remembers tokens in the (database) cache


# --- a Mailgun signer, written from Mailgun's documentation ------------------------------
def mailgun_body(event_data: dict, *, key: str = MAILGUN_SIGNING_KEY, timestamp: int | None = None,
                 token: str | None = None) -> bytes:
    """A webhook body as Mailgun posts it: `signature` (hex HMAC-SHA256 of timestamp + token)
    beside `event-data`."""
    timestamp_text = str(int(time.time()) if timestamp is None else timestamp)
    token = token or secrets.token_hex(25)
    digest = hmac.new(key.encode(), (timestamp_text + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": timestamp_text, "token": token, "signature": digest},
                       "event-data": event_data}).encode()


def event_data(**changes) -> dict:
    return {"id": "Ase7i2zsRYeDXztHGENqRA", "event": "delivered", "timestamp": 1764590000.123,
            "recipient": "ada@example.com", "user-variables": {"email_id": "em_123"},
            "message": {"headers": {"message-id": "20261201.1@mg.example.com", "subject": "Your order"}},
            **changes}


# --- sending ------------------------------------------------------------------------------
@responses.activate
def test_a_send_posts_the_form_with_basic_auth_to_the_domain_path(mailgun):
    responses.post(SEND, json={"id": "<20261201.1@mg.example.com>", "message": "Queued. Thank you."})

    result = adapter_for(mailgun, "email").send(
        message(to=("ada@example.com", "bo@example.com"), bcc=("audit@example.com",), reply_to="help@example.com"))

    assert result == SendResult(status="sent", provider_message_id="20261201.1@mg.example.com")
    (call,) = responses.calls
    assert call.request.url == SEND
    assert call.request.headers["Authorization"] == "Basic " + base64.b64encode(b"api:mailgun-api-key-123").decode()
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Idempotency-Key" not in call.request.headers
    assert parse_qs(call.request.body.decode()) == {
        "from": ["Shop <shop@example.com>"], "to": ["ada@example.com, bo@example.com"],
        "bcc": ["audit@example.com"], "h:Reply-To": ["help@example.com"], "subject": ["Your order"],
        "text": ["Thanks!"], "html": ["<p>Thanks!</p>"], "v:email_id": ["em_123"]}


@pytest.mark.parametrize(("status", "answer", "code"), [
    (400, {"message": "'to' parameter is not a valid address. please check documentation"}, "invalid_recipient"),
    (400, {"message": "'from' parameter is not a valid address. please check documentation"}, "invalid_sender"),
    (400, {"message": "Need at least one of 'text' or 'html' parameters specified"}, "invalid_request"),
    (413, {"message": "request entity too large"}, "message_too_large"),
])
@responses.activate
def test_a_refusal_is_a_failed_result_with_a_clear_code(mailgun, status, answer, code):
    responses.post(SEND, status=status, json=answer)

    result = adapter_for(mailgun, "email").send(message())

    assert (result.status, result.failure_code, result.failure_message) == ("failed", code, answer["message"])


@pytest.mark.parametrize(("status", "answer"), [(401, "Forbidden"), (404, '{"message": "Domain not found"}'),
                                                (429, "{}"), (500, "oops"), (503, "")])
@responses.activate
def test_our_configuration_or_an_outage_is_unavailable_after_one_attempt(mailgun, status, answer):
    responses.post(SEND, status=status, body=answer)  # Mailgun's 401 is plain text

    with pytest.raises(ProviderUnavailable) as err:
        adapter_for(mailgun, "email").send(message())

    assert err.value.result.error_code == f"HTTP_{status}" and len(responses.calls) == 1


# --- the webhook scheme -------------------------------------------------------------------
def verify(body: bytes, *, secrets_=(MAILGUN_SIGNING_KEY,), tolerance: int = 300, now: float | None = None):
    MailgunScheme().verify(headers={}, body=body, secrets=list(secrets_), tolerance=tolerance,
                           now=time.time() if now is None else now)


def test_a_signed_delivery_verifies_and_parses_to_its_event_id_and_type():
    body = mailgun_body(event_data())

    verify(body)
    (event,) = MailgunScheme().parse(headers={}, body=body)

    assert (event.event_id, event.type) == ("Ase7i2zsRYeDXztHGENqRA", "delivered")
    assert event.payload["event-data"]["recipient"] == "ada@example.com"


def test_any_valid_key_verifies_during_a_rotation():
    verify(mailgun_body(event_data()), secrets_=("old-key", MAILGUN_SIGNING_KEY))


@pytest.mark.parametrize("tamper", ["signature", "token", "timestamp"])
def test_a_tampered_signature_block_is_refused(tamper):
    data = json.loads(mailgun_body(event_data()))
    block = data["signature"]
    if tamper == "signature":
        block["signature"] = ("0" if block["signature"][0] != "0" else "1") + block["signature"][1:]
    elif tamper == "token":
        block["token"] = block["token"][::-1]
    else:
        block["timestamp"] = str(int(block["timestamp"]) - 1)

    with pytest.raises(InvalidSignature):
        verify(json.dumps(data).encode())


def test_a_signature_block_reused_with_other_event_data_is_refused():
    body = mailgun_body(event_data())
    forged = json.loads(body)
    forged["event-data"]["event"] = "complained"  # Mailgun signs the token, not the event

    verify(body)
    verify(body)  # the same delivery again: a duplicate for the intake, not a forgery
    with pytest.raises(InvalidSignature, match="already used"):
        verify(json.dumps(forged).encode())


def test_a_wrong_key_is_refused():
    with pytest.raises(InvalidSignature):
        verify(mailgun_body(event_data(), key="someone-else"))


@pytest.mark.parametrize("offset", [-301, 301, -86400])
def test_a_stale_or_future_timestamp_is_out_of_tolerance(offset):
    now = time.time()
    with pytest.raises(TimestampOutOfTolerance):
        verify(mailgun_body(event_data(), timestamp=int(now) + offset), now=now)


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"event-data": {}}', b'{"signature": "x"}',
    b'{"signature": {"timestamp": "1", "token": "t"}}',
    b'{"signature": {"timestamp": "1", "token": "t", "signature": "short"}}',
    b'{"signature": {"timestamp": "soon", "token": "t", "signature": "' + b"a" * 64 + b'"}}',
    b'{"signature": {"timestamp": 1, "token": "t", "signature": "' + b"a" * 64 + b'"}}',
])
def test_a_missing_or_malformed_signature_is_invalid_signature(body):
    with pytest.raises(InvalidSignature):
        verify(body)


@pytest.mark.parametrize("event", [{}, {"event": "delivered"}, {"id": "x"}, {"id": "", "event": "delivered"}])
def test_verified_but_without_an_event_id_or_type_is_invalid_payload(event):
    body = mailgun_body(event)
    verify(body)
    with pytest.raises(InvalidPayload):
        MailgunScheme().parse(headers={}, body=body)


def test_the_mailgun_kind_names_the_scheme_and_basic_auth():
    kind = get_kind("mailgun")
    assert isinstance(kind.webhook_scheme, MailgunScheme) and kind.auth_scheme == "basic"
    assert "email" in kind.capabilities


def test_the_intake_stores_a_signed_event_once_and_refuses_a_bad_signature(mailgun, client):
    url = f"/webhooks/{mailgun.slug}/"
    body = mailgun_body(event_data())

    first = client.post(url, data=body, content_type="application/json")
    again = client.post(url, data=body, content_type="application/json")
    forged = client.post(url, data=mailgun_body(event_data(id="other"), key="forged"), content_type="application/json")

    assert first.json() == {"received": True, "duplicate": False}
    assert again.json() == {"received": True, "duplicate": True}
    assert forged.status_code == 400 and forged.json()["error"]["type"] == "invalid_signature"
    stored = WebhookEvent.objects.get()
    assert (stored.event_id, stored.type) == ("Ase7i2zsRYeDXztHGENqRA", "delivered")
    assert adapter_for(mailgun, "email").parse_event(stored.payload).email_id == "em_123"


# --- events normalised --------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "type_"), [
    ({"event": "accepted"}, "processed"),
    ({"event": "delivered"}, "delivered"),
    ({"event": "failed", "severity": "permanent", "reason": "bounce"}, "bounced"),
    ({"event": "failed", "severity": "permanent", "reason": "suppress-bounce"}, "dropped"),
    ({"event": "failed", "severity": "temporary", "reason": "generic"}, "deferred"),
    ({"event": "rejected"}, "dropped"),
    ({"event": "complained"}, "complained"),
    ({"event": "opened"}, "opened"),
    ({"event": "clicked"}, "clicked"),
    ({"event": "unsubscribed"}, ""),
])
def test_event_data_is_normalised(mailgun, changes, type_):
    adapter = adapter_for(mailgun, "email")

    for payload in (json.loads(mailgun_body(event_data(**changes))), event_data(**changes)):
        data = adapter.parse_event(payload)
        assert data.type == type_
        assert (data.email_id, data.provider_message_id) == ("em_123", "20261201.1@mg.example.com")
        assert data.recipient == "ada@example.com"
        assert data.occurred_at == datetime.fromtimestamp(1764590000.123, tz=UTC)
