"""Standard Webhooks (standardwebhooks.com): the `standard` and `sandbox` kinds.

Signed content is "<webhook-id>.<webhook-timestamp>.<body>", HMAC-SHA256 under the
base64-decoded part of a `whsec_...` secret; `webhook-signature` is a space-separated
list of `v1,<base64>` (several during the sender's own key rotation).
"""

from __future__ import annotations

import base64
import binascii
import logging

from django.views.decorators.debug import sensitive_variables

from webhooks.errors import InvalidSignature
from webhooks.schemes.base import (
    ParsedEvent,
    Scheme,
    any_equal,
    check_timestamp,
    checked_id,
    checked_type,
    hmac_sha256,
    json_object,
    naming_header,
    parse_timestamp,
    require_header,
)

logger = logging.getLogger(__name__)


def secret_key(secret: str) -> bytes | None:
    """The HMAC key of a `whsec_<base64>` secret (the prefix is optional, as in the spec)."""
    raw = secret.removeprefix("whsec_")
    raw += "=" * (-len(raw) % 4)  # senders' libraries accept unpadded secrets too
    try:
        return base64.b64decode(raw, validate=True) or None
    except (binascii.Error, ValueError):
        return None


class StandardScheme(Scheme):
    name = "standard"
    stored_headers = ("webhook-id", "webhook-timestamp")
    signature_headers = ("webhook-signature",)

    @sensitive_variables("secrets", "secret", "key", "text")
    def verify(self, *, headers, body, secrets, tolerance, now):
        msg_id = require_header(headers, "webhook-id")
        if not msg_id.isascii():
            # Standard Webhooks ids are ASCII. A non-ASCII one arrives as its sender's HTTP
            # library encoded it and is read back as latin-1 (WSGI), not as the UTF-8 that
            # was signed: refused before any HMAC is spent on it (and a lone surrogate
            # never reaches .encode() to make a 500).
            raise InvalidSignature("webhook-id must be ASCII.")
        raw_ts = require_header(headers, "webhook-timestamp")
        timestamp = parse_timestamp(raw_ts, "webhook-timestamp")
        given = []
        for item in require_header(headers, "webhook-signature").split(" "):
            version, sep, value = item.partition(",")
            if not sep:
                raise InvalidSignature("Malformed webhook-signature: expected v1,<base64> items.")
            if version == "v1":
                given.append(value)
        if not given:
            raise InvalidSignature("webhook-signature has no v1 signature.")
        signed = f"{msg_id}.{raw_ts}.".encode() + body
        expected = []
        for secret in secrets:
            key = secret_key(secret)
            if key is None:
                # A mistyped stored secret must not look like the sender's fault in silence.
                logger.warning("webhook secret is not valid whsec_ base64; skipped")
                continue
            expected.append(base64.b64encode(hmac_sha256(key, signed)).decode())
        if not any_equal(expected, given):
            raise InvalidSignature()
        check_timestamp(timestamp, tolerance=tolerance, now=now)

    def parse(self, *, headers, body):
        data = json_object(body)
        return [ParsedEvent(event_id=checked_id(naming_header(headers, "webhook-id"), "webhook-id"),
                            type=checked_type(data.get("type"), "body type"), payload=data, payload_is_body=True)]
