"""SendGrid Event Webhook: ECDSA P-256 / SHA-256 over "<timestamp><body>".

The credential (purpose `webhook_public_key`) is the verification key SendGrid shows:
base64 DER (PEM is accepted too). One delivery is a JSON array; every item is its own
event, identified by `sg_event_id`, typed by `event`.
"""

from __future__ import annotations

import base64
import binascii
import logging

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.views.decorators.debug import sensitive_variables

from webhooks.errors import InvalidPayload, InvalidSignature
from webhooks.schemes.base import (
    ParsedEvent,
    Scheme,
    check_timestamp,
    checked_id,
    checked_type,
    load_json,
    parse_timestamp,
    require_header,
)

logger = logging.getLogger(__name__)

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"


def load_public_key(text: str) -> ec.EllipticCurvePublicKey | None:
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error):
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


class SendGridScheme(Scheme):
    name = "sendgrid"
    secret_purpose = "webhook_public_key"  # noqa: S105 - a purpose name
    stored_headers = (TIMESTAMP,)
    signature_headers = (SIGNATURE,)

    @sensitive_variables("secrets", "secret", "key", "text")
    def verify(self, *, headers, body, secrets, tolerance, now):
        raw_ts = require_header(headers, TIMESTAMP)
        timestamp = parse_timestamp(raw_ts, TIMESTAMP)
        try:
            signature = base64.b64decode(require_header(headers, SIGNATURE), validate=True)
        except (binascii.Error, ValueError) as err:
            raise InvalidSignature(f"Malformed {SIGNATURE}: not base64.") from err
        signed = raw_ts.encode() + body
        for text in secrets:
            key = load_public_key(text)
            if key is None:
                logger.warning("webhook public key is not an EC public key; skipped")
                continue
            try:
                key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
            except CryptoInvalidSignature:
                continue
            check_timestamp(timestamp, tolerance=tolerance, now=now)
            return
        raise InvalidSignature()

    def parse(self, *, headers, body):
        items = load_json(body)
        if not isinstance(items, list) or not items:
            raise InvalidPayload("A SendGrid delivery must be a non-empty JSON array of events.")
        events = []
        for item in items:
            if not isinstance(item, dict):
                raise InvalidPayload("Every item of a SendGrid delivery must be a JSON object.")
            events.append(ParsedEvent(event_id=checked_id(item.get("sg_event_id"), "sg_event_id"),
                                      type=checked_type(item.get("event"), "event"), payload=item))
        return events
