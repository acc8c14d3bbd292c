"""Signing webhook deliveries like the providers do, for tests and the benchmark.

Standard Webhooks and Stripe headers come from the providers' own libraries
(`standardwebhooks`, `stripe`), not from this project's code, so a test that passes
proves interoperability, not agreement with itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import stripe
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from standardwebhooks.webhooks import Webhook

STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the `provider` fixture's secret
STRIPE_SECRET = "whsec_stripe_literal_test_secret_0123456789"
HMAC_SECRET = "razorpay-or-github-shared-secret"


def body_of(payload) -> bytes:
    """Compact JSON bytes, the way most senders serialise."""
    return json.dumps(payload, separators=(",", ":")).encode()


def standard_headers(*, body: bytes, msg_id: str, secret: str = STANDARD_SECRET,
                     timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def stripe_headers(*, body: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)
    return {"stripe-signature": header}


def standard_headers_for_bytes(*, body: bytes, msg_id: str, secret: str = STANDARD_SECRET,
                               timestamp: int | None = None) -> dict[str, str]:
    """As `standard_headers`, for any bytes: the library signs a str, so it cannot sign a
    body that is not UTF-8. Written from the spec here, not with this project's code."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


def stripe_headers_for_bytes(*, body: bytes, secret: str = STRIPE_SECRET,
                             timestamp: int | None = None) -> dict[str, str]:
    """As `stripe_headers`, for any bytes (the stripe library signs a str too)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={timestamp},v1={mac}"}


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def razorpay_headers(*, body: bytes, event_id: str, secret: str = HMAC_SECRET) -> dict[str, str]:
    return {"x-razorpay-signature": hex_hmac(secret, body), "x-razorpay-event-id": event_id}


def github_headers(*, body: bytes, delivery: str, event: str, secret: str = HMAC_SECRET) -> dict[str, str]:
    return {"x-hub-signature-256": "sha256=" + hex_hmac(secret, body), "x-github-delivery": delivery,
            "x-github-event": event}


class SendGridKey:
    """A P-256 key pair; `public_b64` is what SendGrid shows as the verification key."""

    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_b64 = base64.b64encode(der).decode()

    def headers(self, *, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        signature = self.private.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"x-twilio-email-event-webhook-signature": base64.b64encode(signature).decode(),
                "x-twilio-email-event-webhook-timestamp": str(timestamp)}


MAILGUN_SECRET = "mailgun-webhook-signing-key-0123456789"


def mailgun_body(event_data: dict, *, secret: str = MAILGUN_SECRET, timestamp: int | None = None,
                 token: str | None = None) -> bytes:
    """A Mailgun webhook body: `signature` (hex HMAC-SHA256 of timestamp + token under the
    webhook signing key) beside `event-data`. Mailgun signs in the body, not in headers."""
    timestamp_text = str(int(time.time()) if timestamp is None else timestamp)
    token = token or hashlib.sha256(json.dumps(event_data, sort_keys=True).encode() + timestamp_text.encode()
                                    ).hexdigest()[:50]
    mac = hmac.new(secret.encode(), (timestamp_text + token).encode(), hashlib.sha256).hexdigest()
    return body_of({"signature": {"timestamp": timestamp_text, "token": token, "signature": mac},
                    "event-data": event_data})


def mailgun_resign(body: bytes, *, secret: str = MAILGUN_SECRET, timestamp: int | None = None) -> bytes:
    """`body` (a Mailgun delivery) signed again with `secret` at `timestamp`."""
    return mailgun_body(json.loads(body)["event-data"], secret=secret, timestamp=timestamp)


def as_meta(headers: dict[str, str]) -> dict[str, str]:
    """Headers as Django test client keyword arguments (HTTP_WEBHOOK_ID=...)."""
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


def charge_event(*, event_id: str, type_: str, charge_id: str, amount: int = 1000, amount_refunded: int = 0,
                 created: int | None = None, failure_code: str | None = None) -> dict:
    """A Stripe/sandbox-shaped charge event."""
    status = "failed" if type_ == "charge.failed" else "succeeded"
    return {
        "id": event_id, "object": "event", "type": type_, "created": created or int(time.time()),
        "data": {"object": {"id": charge_id, "object": "charge", "amount": amount, "currency": "usd",
                            "status": status, "amount_refunded": amount_refunded,
                            "refunded": amount_refunded >= amount > 0, "failure_code": failure_code,
                            "failure_message": "Your card was declined." if failure_code else None}},
    }
