"""Generic HMAC, GitHub-style: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.

The event id is `X-GitHub-Delivery` and the type `X-GitHub-Event`. No signed timestamp:
replays are caught by the unique delivery id.
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


class GitHubScheme(Scheme):
    name = "github"
    stored_headers = ("x-github-delivery", "x-github-event")
    signature_headers = ("x-hub-signature-256",)

    @sensitive_variables("secrets", "secret", "key", "text")
    def verify(self, *, headers, body, secrets, tolerance, now):
        algorithm, sep, given = require_header(headers, "x-hub-signature-256").partition("=")
        if algorithm != "sha256" or not sep or len(given) != 64:
            raise InvalidSignature("Malformed X-Hub-Signature-256: expected sha256=<64 hex>.")
        expected = [hmac_sha256(s.encode(), body).hex() for s in secrets]
        if not any_equal(expected, [given.lower()]):
            raise InvalidSignature()

    def parse(self, *, headers, body):
        data = json_object(body)
        event_id = checked_id(naming_header(headers, "x-github-delivery"), "X-GitHub-Delivery")
        type_ = checked_type(naming_header(headers, "x-github-event"), "X-GitHub-Event")
        return [ParsedEvent(event_id=event_id, type=type_, payload=data, payload_is_body=True)]
