"""Signature schemes: real signers' output accepted, every kind of bad delivery refused."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
import stripe
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from standardwebhooks.webhooks import Webhook

from tests.support import webhook_signing as signing
from webhooks.errors import InvalidPayload, InvalidSignature, TimestampOutOfTolerance
from webhooks.models import WebhookEvent
from webhooks.schemes import scheme_for

NOW = 1_760_000_000


# --- real signers that this project did not write ------------------------------------

def test_standardwebhooks_reference_signature_verifies():
    body = b'{"type":"invoice.paid","data":{"id":1}}'
    signature = Webhook(signing.STANDARD_SECRET).sign("msg_1", datetime.fromtimestamp(NOW, tz=UTC), body.decode())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    scheme_for("standard").verify(headers=headers, body=body, secrets=[signing.STANDARD_SECRET],
                                  tolerance=300, now=NOW)
    [event] = scheme_for("standard").parse(headers=headers, body=body)
    assert (event.event_id, event.type) == ("msg_1", "invoice.paid")


def test_standard_accepts_any_v1_in_a_signature_list():
    body = b'{"type":"a"}'
    good = Webhook(signing.STANDARD_SECRET).sign("m", datetime.fromtimestamp(NOW, tz=UTC), body.decode())
    headers = {"webhook-id": "m", "webhook-timestamp": str(NOW),
               "webhook-signature": f"v1a,AAAA v1,{base64.b64encode(b'x' * 32).decode()} {good}"}
    scheme_for("standard").verify(headers=headers, body=body, secrets=[signing.STANDARD_SECRET],
                                  tolerance=300, now=NOW)


def test_stripe_library_signature_header_verifies():
    body = b'{"id":"evt_1","type":"charge.succeeded"}'
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), signing.STRIPE_SECRET, timestamp=NOW)
    scheme_for("stripe").verify(headers={"stripe-signature": header}, body=body,
                                secrets=[signing.STRIPE_SECRET], tolerance=300, now=NOW)


def test_stripe_accepts_several_v1_signatures():
    body = b'{"id":"evt_1","type":"charge.succeeded"}'
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), signing.STRIPE_SECRET, timestamp=NOW)
    header = header.replace("v1=", "v1=" + "0" * 64 + ",v1=")
    scheme_for("stripe").verify(headers={"stripe-signature": header}, body=body,
                                secrets=[signing.STRIPE_SECRET], tolerance=300, now=NOW)


def test_stripe_v0_only_header_is_refused():
    body = b'{"id":"evt_1","type":"charge.succeeded"}'
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), signing.STRIPE_SECRET, timestamp=NOW)
    with pytest.raises(InvalidSignature, match="no v1"):
        scheme_for("stripe").verify(headers={"stripe-signature": header.replace("v1=", "v0=")}, body=body,
                                    secrets=[signing.STRIPE_SECRET], tolerance=300, now=NOW)


def test_github_published_test_vector_verifies():
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    headers = {"x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    scheme_for("github").verify(headers=headers, body=b"Hello, World!", secrets=["It's a Secret to Everybody"],
                                tolerance=300, now=NOW)
    with pytest.raises(InvalidSignature):
        scheme_for("github").verify(headers=headers, body=b"Hello, World?", secrets=["It's a Secret to Everybody"],
                                    tolerance=300, now=NOW)


def test_sendgrid_ecdsa_signature_made_with_cryptography_verifies():
    key = signing.SendGridKey()
    body = b'[{"sg_event_id":"sg1","event":"delivered"},{"sg_event_id":"sg2","event":"open"}]'
    signature = key.private.sign(str(NOW).encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {"x-twilio-email-event-webhook-signature": base64.b64encode(signature).decode(),
               "x-twilio-email-event-webhook-timestamp": str(NOW)}
    scheme = scheme_for("sendgrid")
    scheme.verify(headers=headers, body=body, secrets=[key.public_b64], tolerance=300, now=NOW)
    assert [(e.event_id, e.type) for e in scheme.parse(headers=headers, body=body)] == [
        ("sg1", "delivered"), ("sg2", "open")]


def test_sendgrid_accepts_a_pem_public_key():
    from cryptography.hazmat.primitives import serialization

    key = signing.SendGridKey()
    pem = key.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    body = b'[{"sg_event_id":"sg1","event":"delivered"}]'
    scheme_for("sendgrid").verify(headers=key.headers(body=body, timestamp=NOW), body=body, secrets=[pem],
                                  tolerance=300, now=NOW)


@pytest.mark.parametrize("kind", ["standard", "stripe", "sendgrid"])
def test_tolerance_zero_still_checks_the_timestamp(kind, sender_of):
    sender = sender_of(kind)
    event_id, body = sender.body()
    headers = sender.headers(body, event_id, timestamp=NOW)
    scheme = scheme_for(kind)
    scheme.verify(headers=headers, body=body, secrets=[sender.secret], tolerance=0, now=NOW)
    with pytest.raises(TimestampOutOfTolerance):
        scheme.verify(headers=headers, body=body, secrets=[sender.secret], tolerance=0, now=NOW + 1)


def test_a_verified_body_that_is_not_json_is_invalid_payload():
    with pytest.raises(InvalidPayload):
        scheme_for("github").parse(headers={"x-github-delivery": "d", "x-github-event": "push"},
                                   body=b"Hello, World!")


# --- through intake: every bad delivery is a 400 and stores nothing -------------------

def _refused(response, error_type: str):
    assert response.status_code == 400, response.content
    assert response.json()["error"]["type"] == error_type
    assert WebhookEvent.objects.count() == 0


def test_good_delivery_is_accepted_for_every_scheme(sender, client):
    event_id, body = sender.body()
    response = sender.post(client, body, sender.headers(body, event_id))
    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "duplicate": False}
    event = WebhookEvent.objects.get()
    assert (event.event_id, event.provider_id) == (event_id, sender.provider.pk)
    assert bytes(event.raw_body) == body


def test_tampered_body_is_refused(sender, client):
    event_id, body = sender.body()
    headers = sender.headers(body, event_id)
    tampered = body[:-1] + b" " + body[-1:]  # still valid JSON, one byte more
    _refused(sender.post(client, tampered, headers), "invalid_signature")


def test_wrong_secret_is_refused(sender, client):
    event_id, body = sender.body()
    other = "whsec_" + base64.b64encode(b"another-secret-entirely-32-bytes").decode()
    _refused(sender.post(client, body, sender.headers(body, event_id, secret=other)), "invalid_signature")


def test_missing_signature_header_is_refused(sender, client):
    event_id, body = sender.body()
    headers = sender.headers(body, event_id)
    del headers[sender.signature_header]
    _refused(sender.post(client, body, headers), "invalid_signature")


MALFORMED = {
    # A lone surrogate cannot come off the wire through WSGI, but can through a test client
    # or another front end: comparing it must not raise (UnicodeEncodeError, a 500).
    "standard": ["nocomma", "v1", "v2,abc", "", "v1,\ud800", "v1,\udcff"],
    "stripe": ["garbage", "t=,v1=", "t=abc,v1=00", "t=1,t=2,v1=00", "v1=" + "0" * 64,
               f"t={int(time.time())},v1=" + "\ud800" * 64],
    "razorpay": ["zz", "not-hex-" * 8, "é" * 64, "\ud800" * 64],
    "github": ["sha1=" + "0" * 40, "sha256=short", "sha256", "=" * 70, "sha256=" + "\ud800" * 64],
    "sendgrid": ["!!!not base64!!!", "AAAA", "é", "\ud800"],
}


def test_malformed_signature_header_is_a_400_never_a_500(sender, client):
    event_id, body = sender.body()
    for bad in MALFORMED[sender.kind]:
        headers = sender.headers(body, event_id)
        headers[sender.signature_header] = bad
        _refused(sender.post(client, body, headers), "invalid_signature")


@pytest.mark.parametrize("header", ["webhook-timestamp", "x-twilio-email-event-webhook-timestamp"])
@pytest.mark.parametrize("value", ["abc", "-5", "1e9", "99999999999999999999", ""])
def test_malformed_timestamp_header_is_invalid_signature(header, value, sender_of, client):
    sender = sender_of("standard" if header == "webhook-timestamp" else "sendgrid")
    event_id, body = sender.body()
    headers = sender.headers(body, event_id)
    headers[header] = value
    _refused(sender.post(client, body, headers), "invalid_signature")


# +302, not +301: the signed second is int(time.time()), up to 1 s behind the intake's clock,
# so a +301 timestamp is within tolerance whenever signing began late in its second.
@pytest.mark.parametrize("offset", [-301, 302, -100_000, 100_000])
@pytest.mark.parametrize("kind", ["standard", "stripe", "sendgrid"])
def test_stale_and_future_timestamps_are_refused(kind, offset, sender_of, client):
    sender = sender_of(kind)
    event_id, body = sender.body()
    headers = sender.headers(body, event_id, timestamp=int(time.time()) + offset)
    _refused(sender.post(client, body, headers), "timestamp_out_of_tolerance")


@pytest.mark.parametrize("kind", ["standard", "stripe", "sendgrid"])
def test_timestamp_tolerance_comes_from_the_provider(kind, sender_of, client):
    sender = sender_of(kind)
    sender.provider.webhook_tolerance = 1000
    sender.provider.save()
    event_id, body = sender.body()
    response = sender.post(client, body, sender.headers(body, event_id, timestamp=int(time.time()) - 900))
    assert response.status_code == 200


def test_reserialised_json_fails_verification(sender, client):
    event_id, body = sender.body()
    headers = sender.headers(body, event_id)
    reserialised = json.dumps(json.loads(body), indent=2).encode()
    assert json.loads(reserialised) == json.loads(body)
    _refused(sender.post(client, reserialised, headers), "invalid_signature")


def test_verified_but_not_json_is_invalid_payload_and_stores_nothing(sender_of, client):
    sender = sender_of("github")
    body = b"Hello, World!"
    _refused(sender.post(client, body, sender.headers(body, "d-1")), "invalid_payload")


@pytest.mark.parametrize("kind", ["standard", "stripe", "sendgrid"])
def test_verified_json_without_an_event_id_or_type_is_invalid_payload(kind, sender_of, client):
    sender = sender_of(kind)
    bodies = {"standard": b'{"data":{}}', "stripe": b'{"type":"x"}',
              "sendgrid": b'[{"event":"delivered"}]'}
    body = bodies[kind]
    _refused(sender.post(client, body, sender.headers(body, "evt_x")), "invalid_payload")


# --- ids and types in headers: printable ASCII, a 400 otherwise, never a 500 ----------

NON_ASCII = ["évt_1", "\u2603", "msg_\u00ff", "\ud800", "id-\U0001f600"]


def _hmac_must_not_run(*args, **kwargs):
    raise AssertionError("an HMAC was computed for a webhook-id that can never verify")


@pytest.mark.parametrize("msg_id", NON_ASCII)
def test_a_non_ascii_webhook_id_is_refused_before_any_hmac(msg_id, sender_of, client, monkeypatch):
    sender = sender_of("standard")
    _, body = sender.body()
    headers = sender.headers(body, "msg_ascii")
    headers["webhook-id"] = msg_id
    monkeypatch.setattr("webhooks.schemes.standard.hmac_sha256", _hmac_must_not_run)
    response = sender.post(client, body, headers)
    _refused(response, "invalid_signature")
    assert "webhook-id must be ASCII" in response.json()["error"]["message"]


def test_the_scheme_refuses_a_non_ascii_webhook_id_whatever_the_signature(monkeypatch):
    monkeypatch.setattr("webhooks.schemes.standard.hmac_sha256", _hmac_must_not_run)
    body = b'{"type":"a"}'
    # Signed by the reference library over the id's UTF-8: still refused, as the id would
    # not arrive as these characters through a WSGI server.
    signature = Webhook(signing.STANDARD_SECRET).sign("évt", datetime.fromtimestamp(NOW, tz=UTC), body.decode())
    headers = {"webhook-id": "évt", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    with pytest.raises(InvalidSignature, match="webhook-id must be ASCII"):
        scheme_for("standard").verify(headers=headers, body=body, secrets=[signing.STANDARD_SECRET],
                                      tolerance=300, now=NOW)


@pytest.mark.parametrize(("kind", "header"), [("razorpay", "x-razorpay-event-id"),
                                              ("github", "x-github-delivery"), ("github", "x-github-event")])
@pytest.mark.parametrize("value", [*NON_ASCII, "a\x00b", "tab\there", "\x7f"])
def test_an_id_or_type_header_that_is_not_printable_ascii_is_a_400_never_a_500(kind, header, value, sender_of,
                                                                                 client):
    sender = sender_of(kind)
    event_id, body = sender.body()
    headers = sender.headers(body, event_id)  # these headers are not signed: verification passes
    headers[header] = value
    response = sender.post(client, body, headers)
    _refused(response, "invalid_payload")
    assert f"{header} must be printable ASCII" in response.json()["error"]["message"]


@pytest.mark.parametrize("msg_id", ["a\x00b", "tab\there"])
def test_a_signed_webhook_id_with_control_characters_is_invalid_payload(msg_id, sender_of, client):
    """ASCII, so it verifies; but a NUL cannot be stored (PostgreSQL text) and no sender
    means it: a 400 at parsing, not a 500 at the INSERT."""
    sender = sender_of("standard")
    _, body = sender.body()
    _refused(sender.post(client, body, sender.headers(body, msg_id)), "invalid_payload")


@pytest.mark.parametrize(("kind", "header"), [("razorpay", "x-razorpay-event-id"),
                                              ("github", "x-github-delivery"), ("standard", "webhook-id")])
def test_printable_ascii_ids_with_punctuation_are_still_accepted(kind, header, sender_of, client):
    sender = sender_of(kind)
    event_id = "evt 1:2/3+=~_-." if kind != "standard" else "msg_1:2/3+=~_-."
    _, body = sender.body(event_id)
    response = sender.post(client, body, sender.headers(body, event_id))
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.get().event_id == event_id
