"""An optional, short per-process cache of what verification reads from the database.

Off by default (WEBHOOK_VERIFY_CACHE_SECONDS = 0): every delivery reads its provider and
the provider's valid secrets, so a change is exact at once. When set to a few seconds,
those two reads are skipped for repeat deliveries (they are most of the intake's cost
beyond storing the event). Changes saved in this process (admin, rotate_credential,
credential_rotate) clear the cache at once; changes made by another process are seen
within the TTL: for that long, a disabled provider may still be accepted, and a secret
rotated *without* grace may still verify (or a brand-new one not yet).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from webhooks import conf

T = TypeVar("T")

MAX_ENTRIES = 1000  # a bound, not a tuning knob: entries are per provider

_entries: dict[Hashable, tuple[float, object]] = {}
_clock = time.monotonic


def cached(key: Hashable, loader: Callable[[], T]) -> T:
    """loader() through the cache (when enabled). Only found values should be cached:
    callers raise for misses, so unknown slugs never fill it."""
    ttl = conf.get("WEBHOOK_VERIFY_CACHE_SECONDS")
    if ttl <= 0:
        return loader()
    now = _clock()
    hit = _entries.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]  # type: ignore[return-value]
    value = loader()
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[key] = (now + ttl, value)
    return value


def clear(**kwargs) -> None:
    """Forget everything (signal receiver for Provider and Credential saves/deletes)."""
    _entries.clear()
