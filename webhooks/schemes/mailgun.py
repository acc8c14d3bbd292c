"""Mailgun: the signature is in the JSON body, `signature{timestamp, token, signature}`, where
`signature` is the hex HMAC-SHA256 of timestamp + token under the webhook signing key.

One delivery is one event: its id is `event-data.id`, its type `event-data.event`.
Mailgun signs the timestamp and a random token, not the event itself, so a signature proves
who sent *a* delivery and when, not what it says: a captured signature block could carry
forged event data within the tolerance window. As Mailgun advises, tokens are remembered
(in the shared cache, for the window): a token seen with another body is refused. The same
body again (a redelivery) passes, and is a duplicate by its event id.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import cache
from django.views.decorators.debug import sensitive_variables

from webhooks.errors import InvalidPayload, InvalidSignature
from webhooks.schemes.base import (
    ParsedEvent,
    Scheme,
    any_equal,
    check_timestamp,
    checked_id,
    checked_type,
    hmac_sha256,
    load_json,
    parse_timestamp,
)

logger = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 200
SEEN_PREFIX = "webhooks:mailgun:seen:"


def _bind_token(token: str, body: bytes, *, tolerance: int) -> None:
    """Remember that `token` signed `body`; InvalidSignature when it signed another body."""
    key = SEEN_PREFIX + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    digest = hashlib.sha256(body).hexdigest()
    try:
        # Past twice the tolerance (either direction) the timestamp check refuses the token anyway.
        if cache.add(key, digest, timeout=2 * max(tolerance, 0) + 60):
            return
        seen = cache.get(key)
    except Exception:  # noqa: BLE001 - the signature is valid: an unreachable cache must not refuse it
        logger.warning("could not check the Mailgun token against the cache", exc_info=True)
        return
    if seen is not None and seen != digest:
        raise InvalidSignature("This Mailgun signature was already used for another delivery.")


def _signature(body: bytes) -> tuple[str, str, str]:
    """(timestamp, token, signature) from the body; InvalidSignature when any is missing, as
    with a missing signature header elsewhere (a body that is not JSON carries none)."""
    try:
        data = load_json(body)
    except InvalidPayload as err:
        raise InvalidSignature("Missing Mailgun signature: the body is not JSON.") from err
    block = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(block, dict):
        raise InvalidSignature("Missing Mailgun signature object.")
    values = [block.get(name) for name in ("timestamp", "token", "signature")]
    if not all(isinstance(v, str) and v for v in values):
        raise InvalidSignature("Malformed Mailgun signature: timestamp, token and signature are required strings.")
    timestamp, token, signature = values
    if len(token) > MAX_TOKEN_LENGTH or len(signature) != 64:
        raise InvalidSignature("Malformed Mailgun signature: expected a token and 64 hex characters.")
    return timestamp, token, signature


class MailgunScheme(Scheme):
    name = "mailgun"

    @sensitive_variables("secrets", "secret", "key", "text")
    def verify(self, *, headers, body, secrets, tolerance, now):
        raw_ts, token, given = _signature(body)
        timestamp = parse_timestamp(raw_ts, "signature.timestamp")
        signed = (raw_ts + token).encode("utf-8", "surrogatepass")
        expected = [hmac_sha256(s.encode(), signed).hex() for s in secrets]
        if not any_equal(expected, [given.lower()]):
            raise InvalidSignature()
        check_timestamp(timestamp, tolerance=tolerance, now=now)
        _bind_token(token, body, tolerance=tolerance)

    def parse(self, *, headers, body):
        data = load_json(body)
        event = data.get("event-data") if isinstance(data, dict) else None
        if not isinstance(event, dict):
            raise InvalidPayload("A Mailgun delivery must carry an event-data object.")
        return [ParsedEvent(event_id=checked_id(event.get("id"), "event-data.id"),
                            type=checked_type(event.get("event"), "event-data.event"),
                            payload=data, payload_is_body=True)]
