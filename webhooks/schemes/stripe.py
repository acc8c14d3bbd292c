"""Stripe: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>...]` over "<ts>.<body>".

The `whsec_...` secret is the HMAC key as literal bytes (unlike Standard Webhooks).
Only `v1` counts: a header with nothing but `v0` (Stripe's test scheme) is refused.
"""

from __future__ import annotations

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
    parse_timestamp,
    require_header,
)


class StripeScheme(Scheme):
    name = "stripe"
    signature_headers = ("stripe-signature",)

    @sensitive_variables("secrets", "secret", "key", "text")
    def verify(self, *, headers, body, secrets, tolerance, now):
        header = require_header(headers, "stripe-signature")
        timestamps, given = [], []
        for item in header.split(","):
            key, sep, value = item.strip().partition("=")
            if not sep or not value:
                raise InvalidSignature("Malformed Stripe-Signature: expected t=...,v1=... items.")
            if key == "t":
                timestamps.append(value)
            elif key == "v1":
                given.append(value.lower())
        if len(timestamps) != 1:
            raise InvalidSignature("Stripe-Signature must carry exactly one t=.")
        if not given:
            raise InvalidSignature("Stripe-Signature has no v1 signature.")
        timestamp = parse_timestamp(timestamps[0], "Stripe-Signature")
        signed = f"{timestamps[0]}.".encode() + body
        expected = [hmac_sha256(s.encode(), signed).hex() for s in secrets]
        if not any_equal(expected, given):
            raise InvalidSignature()
        check_timestamp(timestamp, tolerance=tolerance, now=now)

    def parse(self, *, headers, body):
        data = json_object(body)
        return [ParsedEvent(event_id=checked_id(data.get("id"), "event id"),
                            type=checked_type(data.get("type"), "event type"), payload=data, payload_is_body=True)]
