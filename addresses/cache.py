"""The verification cache: entries in the shared Django cache, and single flight on a miss.

Keys come from the outbound client's `response_cache.cache_key` (provider slug, environment,
API version, path and the normalised query), so they live beside the client's own entries.
The client's read-through cache is not used as is: it keeps every 2xx for one TTL and has no
refresh or single flight, while a "not found" here is kept one day and a miss must make one
upstream call however many requests want it (see docs/addresses.md).

Single flight: the first request to miss takes a short lock with `cache.add` (atomic on
Redis and on the database cache) and fetches; the others poll the cache for its answer
until a deadline, and take the lock themselves if it goes away without one.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from addresses.conf import address_settings
from integrations import response_cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """A stored answer: `place` is the Place dict, None for "not found"; times are wall seconds."""

    place: dict[str, Any] | None
    stored_at: float
    expires_at: float

    def as_value(self) -> dict:
        return {"place": self.place, "stored_at": self.stored_at, "expires_at": self.expires_at}


class WaitFailed(Exception):
    """The request fetching this key failed, or held its lock past our deadline."""


# After a failed fetch the lock stays taken ADDRESSES_FAILED_HOLD_SECONDS, marked failed: requests
# waiting on it, and those arriving meanwhile, fail at once instead of each trying the provider in turn.
_FAILED = "failed"
_WAITERS_SECONDS = 30


def entry_key(*, provider, normalized: str) -> str:
    return response_cache.cache_key(provider=provider, path="/search", params=None,
                                    key_parts={"geocoding": normalized})


def entry_get(key: str, *, now: float) -> Entry | None:
    """The unexpired entry under `key` (expiry checked against `now`, so tests can move time);
    None too when the cache cannot be read (a miss: the provider is asked)."""
    try:
        value = cache.get(key)
    except Exception:  # noqa: BLE001 - the cache is an optimisation: fail open, as the client's gates do
        logger.warning("address cache unavailable: treated as a miss", exc_info=True)
        return None
    if not value or value["expires_at"] <= now:
        return None
    return Entry(**value)


def entry_put(key: str, *, place: dict | None, ttl: int, now: float) -> Entry:
    entry = Entry(place=place, stored_at=now, expires_at=now + ttl)
    try:
        # Kept a little past its TTL even when the TTL is 0, so requests waiting on this fetch see it.
        cache.set(key, entry.as_value(), timeout=max(ttl, _WAITERS_SECONDS))
    except Exception:  # noqa: BLE001 - the answer is here; not keeping it is the lesser harm
        logger.warning("address cache unavailable: answer not kept", exc_info=True)
    return entry


def single_flight(key: str, fetch: Callable[[], Entry], *, lock_seconds: int,
                  clock: Callable[[], float] = time.time, fresh_after: float | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> tuple[Entry, bool]:
    """(entry, fetched here): `fetch()` under the key's lock, or the entry another request
    stored meanwhile. `fresh_after` (wall seconds) is the oldest entry a waiter accepts
    (a refresh must not take the answer it is replacing).

    `lock_seconds` bounds the fetch (the provider's deadline and a margin): the lock of a
    process killed mid-fetch expires then, and a waiter gives up a second after that.
    Without a reachable cache there is no lock: every request fetches for itself."""
    lock_key, token = f"{key}:lock", secrets.token_hex(8)
    deadline = time.monotonic() + lock_seconds + 1
    while True:
        try:
            locked = cache.add(lock_key, token, timeout=lock_seconds)
        except Exception:  # noqa: BLE001 - fail open, see entry_get
            logger.warning("address cache unavailable: fetching without single flight", exc_info=True)
            return fetch(), True
        if locked:
            return _fetch_locked(key, lock_key, token, fetch, clock=clock, recheck=fresh_after is None)
        try:
            entry = _wait(key, lock_key, deadline, clock=clock, fresh_after=fresh_after, sleep=sleep)
        except WaitFailed:
            raise
        except Exception:  # noqa: BLE001 - the cache went away while waiting
            logger.warning("address cache unavailable: fetching without single flight", exc_info=True)
            return fetch(), True
        if entry is not None:
            return entry, False
        # The lock expired without an answer: try to take it ourselves.


def _fetch_locked(key, lock_key, token, fetch, *, clock, recheck: bool) -> tuple[Entry, bool]:
    """Fetch holding the lock; release it, or mark it failed for FAILED_HOLD_SECONDS."""
    failed = True
    try:
        if recheck:  # filled between our miss and our lock?
            entry = entry_get(key, now=clock())
            if entry is not None:
                failed = False
                return entry, False
        entry = fetch()
        failed = False
        return entry, True
    finally:
        hold = float(address_settings.FAILED_HOLD_SECONDS)
        try:
            if not failed or hold <= 0:
                # The lock outlives any fetch (the provider's deadline bounds it), so it is
                # still ours: one round trip, no compare.
                cache.delete(lock_key)
            elif cache.get(lock_key) == token:
                cache.set(lock_key, _FAILED, timeout=hold)
        except Exception:  # noqa: BLE001 - it expires by itself
            logger.warning("address cache unavailable: lock left to expire", exc_info=True)


def _wait(key, lock_key, deadline, *, clock, fresh_after, sleep) -> Entry | None:
    """The entry another request's fetch stores; None when its lock goes away without one."""
    while True:
        value = cache.get(key)
        if value and (value["stored_at"] >= fresh_after if fresh_after is not None
                      else value["expires_at"] > clock()):
            return Entry(**value)
        holder = cache.get(lock_key)
        if holder is None:
            return None
        if holder == _FAILED:
            raise WaitFailed("the provider call for this address just failed")
        if time.monotonic() >= deadline:
            raise WaitFailed("timed out waiting for another request's provider call")
        sleep(float(address_settings.POLL_SECONDS))
