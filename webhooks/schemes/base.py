"""The interface every signature scheme implements, and the steps they share.

A scheme answers two questions about a delivery, in this order:
`verify` (is it really from the provider, and recent?) and `parse` (which events does it
carry?). Intake calls `verify` on the raw bytes before anything is decoded or stored.
Adding a provider that signs differently is adding one module with one subclass.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from api.parsers import MAX_DEPTH, check_storable, finite_float, reject_constant
from webhooks.errors import InvalidPayload, InvalidSignature, TimestampOutOfTolerance

# Headers arrive as a mapping with lower-case names (intake normalises them).
Headers = Mapping[str, str]

# What no database text or JSON column stores: NUL and unpaired UTF-16 surrogates.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_EVENT_ID_LENGTH = 255
MAX_TYPE_LENGTH = 255


@dataclass(frozen=True)
class ParsedEvent:
    """One event of a verified delivery: what gets stored and later handled."""

    event_id: str
    type: str
    payload: Any
    # True when `payload` is the whole body parsed: the intake can then store the body's
    # own JSON text as the payload instead of encoding `payload` again.
    payload_is_body: bool = False


class Scheme:
    """A provider family's signature scheme. Subclasses set the class attributes and
    implement `verify` and `parse`; the helpers below hold what the schemes share."""

    name: ClassVar[str]
    # The credential purpose holding the verification secret (or public key).
    secret_purpose: ClassVar[str] = "webhook_secret"  # noqa: S105 - a purpose name
    # Headers kept on the event row for debugging; `signature_headers` are kept redacted.
    stored_headers: ClassVar[tuple[str, ...]] = ()
    signature_headers: ClassVar[tuple[str, ...]] = ()

    def verify(self, *, headers: Headers, body: bytes, secrets: Sequence[str],
               tolerance: int, now: float) -> None:
        """Raise InvalidSignature unless one of `secrets` signed `body` (and the signed
        timestamp, where the scheme has one); raise TimestampOutOfTolerance when the
        signature is good but the timestamp is more than `tolerance` seconds from `now`."""
        raise NotImplementedError

    def parse(self, *, headers: Headers, body: bytes) -> list[ParsedEvent]:
        """The events of an already verified delivery; InvalidPayload when it is not the
        JSON this provider sends."""
        raise NotImplementedError

    def headers_to_store(self, headers: Headers) -> dict[str, str]:
        """The selected headers of a delivery, signatures replaced by a marker."""
        kept = {}
        for name in (*self.stored_headers, *self.signature_headers, "content-type", "user-agent",
                     "x-request-id"):
            if name in headers:
                # A NUL or lone surrogate (a front end that does not validate headers) would
                # make the jsonb column refuse the whole row: keep the rest of the value.
                kept[name] = ("[redacted]" if name in self.signature_headers
                              else _UNSTORABLE.sub("\ufffd", headers[name][:500]))
        return kept


# --- shared steps ---------------------------------------------------------------------

def require_header(headers: Headers, name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise InvalidSignature(f"Missing {name} header.")
    return value


def naming_header(headers: Headers, name: str) -> str | None:
    """A header that names the event (its id or type), or None when absent; InvalidPayload
    unless printable ASCII. Every provider's ids and types are ASCII; anything else is
    bytes in an encoding we cannot know (WSGI reads them as latin-1), and a NUL or a lone
    surrogate (ASGI, a test client) would fail the INSERT: a 500, not a 400."""
    value = headers.get(name)
    if value is not None and not (value.isascii() and value.isprintable()):
        raise InvalidPayload(f"{name} must be printable ASCII.")
    return value


def parse_timestamp(raw: str, header: str) -> int:
    """Unix seconds from a header; a malformed value is a signature error (400), never a 500."""
    # isascii: str.isdigit() also accepts "²" and other digits int() refuses.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise InvalidSignature(f"Malformed timestamp in {header}.")
    return int(raw)


def check_timestamp(timestamp: int, *, tolerance: int, now: float) -> None:
    """Both directions: a clock far in the future is as suspicious as a stale replay.
    A tolerance of zero still checks (exact second), it never disables the check."""
    if abs(now - timestamp) > max(tolerance, 0):
        raise TimestampOutOfTolerance(
            f"Timestamp {timestamp} is more than {tolerance} s away from the server time."
        )


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def any_equal(expected: Sequence[bytes | str], given: Sequence[bytes | str]) -> bool:
    """Constant-time comparison of every expected value against every given one."""
    found = False
    for want in expected:
        for got in given:
            # Bytes on both sides: compare_digest refuses non-ASCII str, which a sender controls.
            if hmac.compare_digest(_bytes(want), _bytes(got)):
                found = True
    return found


def _bytes(value: bytes | str) -> bytes:
    # surrogatepass: every str encodes, a lone surrogate (ASGI, a test client) included.
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def load_json(body: bytes) -> Any:
    try:
        # NaN, Infinity and out-of-range numbers parse in Python but are not JSON, and
        # neither PostgreSQL's jsonb nor SQLite's JSON check accepts them back.
        data = json.loads(body, parse_constant=reject_constant, parse_float=finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InvalidPayload("The body is not valid JSON.") from err
    if _plainly_storable(body):
        return data
    try:
        # Valid JSON, but PostgreSQL's jsonb cannot hold NUL or lone surrogates (and deep
        # nesting is an attack): a clear 400 now instead of a 500 at the INSERT.
        check_storable(data)
    except ValueError as err:
        raise InvalidPayload(f"The body cannot be stored: {err}.") from None
    return data


def plain_ascii(body: bytes) -> bool:
    """ASCII, and UTF-8 JSON: json.loads also reads UTF-16 and UTF-32 bodies, whose bytes
    are ASCII too but hold NULs (no UTF-8 JSON text has a raw NUL byte)."""
    return body.isascii() and b"\x00" not in body


def _plainly_storable(body: bytes) -> bool:
    """True when the body, already parsed as JSON, cannot hold what check_storable looks
    for, so the walk over every value can be skipped: strict JSON allows no raw control
    character in a string, so a NUL needs a \\u escape, and so does a lone surrogate in
    a plain ASCII body; nesting past MAX_DEPTH needs more brackets than that."""
    return plain_ascii(body) and b"\\u" not in body and body.count(b"{") + body.count(b"[") <= MAX_DEPTH


def checked_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidPayload(f"The delivery has no {what}.")
    if len(value) > MAX_EVENT_ID_LENGTH:
        raise InvalidPayload(f"The {what} is longer than {MAX_EVENT_ID_LENGTH} characters.")
    return value


def checked_type(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidPayload(f"The delivery has no {what}.")
    if len(value) > MAX_TYPE_LENGTH:
        raise InvalidPayload(f"The {what} is longer than {MAX_TYPE_LENGTH} characters.")
    return value


def json_object(body: bytes) -> dict:
    data = load_json(body)
    if not isinstance(data, dict):
        raise InvalidPayload("The body must be a JSON object.")
    return data
