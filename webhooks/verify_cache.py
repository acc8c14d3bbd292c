"""A per-process cache of what verification reads from the database, bounded across processes.

Each delivery needs its provider and the provider's valid secrets: two queries and a
Fernet decryption, most of the intake's cost beyond storing the event. This keeps them
per process for up to WEBHOOK_VERIFY_CACHE_SECONDS (default 5; 0 turns it off), and
stamps every entry with a *version* kept in the shared state every process sees
(`integrations.shared_state`: Redis in production, a database row otherwise). An entry
is used only while the shared version is unchanged, and every save or delete of a
Provider or a Credential, in any process, replaces the version when it commits (and
clears this process's entries at once).

A process reads the shared version at most once per WEBHOOK_VERIFY_CACHE_RECHECK_SECONDS
(default 0.1 s; 0: on every delivery), the bound the circuit breaker uses for its shared
state too. So a disabled provider answers 404, and a secret rotated without grace stops
verifying, at once in the process that saved the change and within 0.1 s in every other
one. Reading the version on every delivery cost a Redis round trip, a third of what the
cache saved (bench/RESULTS.md); once per 0.1 s it is one read per process, whatever the
delivery rate.

Time-based changes need no save: each secret is kept with its `active_until` and dropped
once that has passed, so a grace period ends on time.

What is still bounded by the TTL and not by the recheck: a change written without
Django's signals (`QuerySet.update()`, raw SQL, another program on the database), and one
whose process died between its commit and replacing the version. When the shared state
cannot be read, nothing is cached (every delivery reads the database).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Hashable
from typing import TypeVar

from django.db import transaction

from integrations import shared_state
from webhooks.conf import webhook_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ENTRIES = 1000  # a bound, not a tuning knob: entries are per provider
VERSION_KEY = "webhooks:verify-cache:version"
# The version expires (then a new one is made: one reload per process) only so that the
# database store does not keep a row forever; any length works.
VERSION_TTL = 24 * 3600.0

# key -> (expires at on _clock, shared version it was loaded under, value)
_entries: dict[Hashable, tuple[float, str, object]] = {}
_clock = time.monotonic
_seen_version: str | None = None  # the shared version as last read, and when (on _clock)
_version_read_at = float("-inf")


def shared_version() -> str | None:
    """The current shared version, created when missing (first use, eviction, a flush);
    None when the shared cache cannot be reached, which means: do not cache."""
    try:
        store = shared_state.store()
        version = store.get(VERSION_KEY)
        if version is None:
            store.add(VERSION_KEY, uuid.uuid4().hex, ttl=VERSION_TTL)
            version = store.get(VERSION_KEY)
    except Exception:  # noqa: BLE001 - any failure here means "read the database"
        logger.warning("webhook verification cache: shared version unreadable, not caching", exc_info=True)
        return None
    return version


def cached(key: Hashable, loader: Callable[[], T]) -> T:
    """loader() through the cache (when enabled). Only found values should be cached:
    callers raise for misses, so unknown slugs never fill it."""
    ttl = webhook_settings.VERIFY_CACHE_SECONDS
    if ttl <= 0:
        return loader()
    now = _clock()
    # Read the version *before* loading: a change committed after this read replaces
    # the version, so whatever this load saw is dropped at the next read.
    version = _current_version(now)
    if version is None:
        return loader()
    hit = _entries.get(key)
    if hit is not None and hit[0] > now and hit[1] == version:
        return hit[2]  # type: ignore[return-value]
    value = loader()
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[key] = (now + ttl, version, value)
    return value


def _current_version(now: float) -> str | None:
    """The shared version, read again once WEBHOOK_VERIFY_CACHE_RECHECK_SECONDS have passed
    since the last read; a new one drops every entry at once, rather than as each is next
    used, so revoked secrets do not linger in this process's memory."""
    global _seen_version, _version_read_at
    if _seen_version is not None and now - _version_read_at < webhook_settings.VERIFY_CACHE_RECHECK_SECONDS:
        return _seen_version
    version = shared_version()
    if version != _seen_version:
        _entries.clear()
    _seen_version, _version_read_at = version, now
    return version


def clear(**kwargs) -> None:
    """Forget this process's entries, and read the shared version at the next delivery
    (tests; see `changed` for saves)."""
    global _version_read_at
    _entries.clear()
    _version_read_at = float("-inf")


def bump() -> None:
    """Replace the shared version: every process's entries stop being used."""
    new = uuid.uuid4().hex
    try:
        shared_state.store().update(VERSION_KEY, lambda _current: (new, None), ttl=VERSION_TTL)
    except Exception:  # noqa: BLE001 - a save must not fail because the shared state is down
        # Other processes cannot read the version either while this lasts (so they do
        # not cache); if it comes back at once, their entries live at most the TTL.
        logger.error("webhook verification cache: could not replace the shared version", exc_info=True)


def changed(**kwargs) -> None:
    """Signal receiver for Provider and Credential saves and deletes.

    Clears this process at once (its own transaction already sees the change) and
    replaces the shared version once the change is committed, when other processes can
    first read it: whatever they loaded before that carries the old version and is
    dropped at their next read of the version. (Replacing it before the commit as well would add
    nothing, and with the database store would keep its row locked until the caller's
    transaction ends, serialising unrelated changes and risking deadlocks.)
    """
    using = kwargs.get("using") or "default"
    clear()
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(_after_commit, using=using, robust=True)
    else:
        _after_commit()


def _after_commit() -> None:
    # The new version first, then the local clear: cleared first, another thread here
    # could read the old version again and keep an entry loaded before the change.
    bump()
    clear()
