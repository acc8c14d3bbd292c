"""Razorpay: `X-Razorpay-Signature` is the hex HMAC-SHA256 of the raw body.

Razorpay signs no timestamp (and redelivers the same event for hours), so there is no
freshness check: a replayed delivery is caught by the unique event id instead.
"""

from __future__ import annotations

from django.views.decorators.debug import sensitive_variables

from webhooks.errors import InvalidSignature
from webhooks.schemes.base import (
    ParsedEvent,
    Scheme,
    any_equal,
    checked_id,
    checked_type,
    hmac_sha256,
    json_object,
    naming_header,
    require_header,
)


class RazorpayScheme(Scheme):
    name = "razorpay"
    stored_headers = ("x-razorpay-event-id",)
    signature_headers = ("x-razorpay-signature",)

    @sensitive_variables("secrets", "secret", "key", "text")
    def verify(self, *, headers, body, secrets, tolerance, now):
        given = require_header(headers, "x-razorpay-signature").lower()
        if len(given) != 64:
            raise InvalidSignature("Malformed X-Razorpay-Signature: expected 64 hex characters.")
        expected = [hmac_sha256(s.encode(), body).hex() for s in secrets]
        if not any_equal(expected, [given]):
            raise InvalidSignature()

    def parse(self, *, headers, body):
        data = json_object(body)
        event_id = checked_id(naming_header(headers, "x-razorpay-event-id"), "X-Razorpay-Event-Id")
        return [ParsedEvent(event_id=event_id, type=checked_type(data.get("event"), "body event"),
                            payload=data, payload_is_body=True)]
