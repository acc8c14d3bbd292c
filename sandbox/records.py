"""A deterministic dataset of 1,000,000 records, computed on the fly, never stored.

Record n (1-based) is a pure function of n and its revision (0 unless a test changed it
through the records capability), so a resumed import sees exactly the data it would have
seen without the interruption, and a test can recompute any record. The cursor is opaque
to clients; it encodes the last record number returned (a position, not a snapshot), so it
stays valid while records change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

TOTAL = 1_000_000
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# 2024-01-01T00:00:00Z; record n was "created" n * 30 seconds later.
EPOCH = 1_704_067_200

_FIRST = ["Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace",
          "Hedy", "Ivan", "John", "Katherine", "Leslie", "Margaret", "Niklaus", "Radia"]
_LAST = ["Lovelace", "Turing", "Liskov", "Shannon", "Knuth", "Dijkstra", "Allen", "Hopper",
         "Lamarr", "Sutherland", "Backus", "Johnson", "Lamport", "Hamilton", "Wirth", "Perlman"]
_COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "NG", "CA", "AU", "ES", "MX"]
_CURRENCIES = ["usd", "gbp", "eur", "eur", "inr", "brl", "jpy", "ngn", "cad", "aud", "eur", "mxn"]


class CursorError(ValueError):
    """A cursor this dataset did not hand out."""


def record(number: int, revision: int = 0) -> dict:
    """Record `number` (1..TOTAL) as of `revision`: each revision renames it and moves its
    `updated_at` an hour later (what a partner's edit looks like to an importer)."""
    digest = hashlib.blake2b(f"sandbox-record:{number}".encode(), digest_size=16).digest()
    first, last = _FIRST[digest[0] % len(_FIRST)], _LAST[(digest[1] + revision) % len(_LAST)]
    country = digest[2] % len(_COUNTRIES)
    return {
        "id": f"rec_{number:07d}",
        "object": "record",
        "number": number,
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}.{number}@example.com",
        "country": _COUNTRIES[country],
        "currency": _CURRENCIES[country],
        "amount": int.from_bytes(digest[3:6], "big") % 1_000_000,
        "active": digest[6] % 10 != 0,
        "created": EPOCH + number * 30,
        "updated_at": datetime.fromtimestamp(EPOCH + number * 30 + revision * 3600, UTC)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "revision": revision,
        "checksum": digest[7:15].hex(),
    }


def encode_cursor(after: int) -> str:
    return base64.urlsafe_b64encode(f"after:{after}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, _, number = raw.partition(":")
        after = int(number)
    except (ValueError, UnicodeDecodeError, binascii.Error) as err:
        raise CursorError("invalid cursor") from err
    if prefix != "after" or not 0 <= after <= TOTAL:
        raise CursorError("invalid cursor")
    return after


def decode_starting_after(record_id: str) -> int:
    """Stripe's style of cursor: the id of the last record seen (`rec_0000123`)."""
    if not record_id.startswith("rec_") or not record_id[4:].isdigit():
        raise CursorError("invalid starting_after")
    after = int(record_id[4:])
    if not 1 <= after <= TOTAL:
        raise CursorError("invalid starting_after")
    return after


def page(*, cursor: str | None, limit: int, starting_after: str | None = None,
         revisions: Mapping[int, int] | None = None) -> dict:
    """One page after `cursor` (or after the record `starting_after`; from the start when
    neither is given), Stripe-list shaped; `revisions` maps changed record numbers to their
    revision."""
    after = decode_cursor(cursor) if cursor else decode_starting_after(starting_after) if starting_after else 0
    last = min(after + limit, TOTAL)
    revisions = revisions or {}
    data = [record(n, revisions.get(n, 0)) for n in range(after + 1, last + 1)]
    has_more = last < TOTAL
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "next_cursor": encode_cursor(last) if has_more else None,
        "total_count": TOTAL,
    }
