"""State shared by every web and worker process: circuit breakers, token buckets, OAuth tokens.

Two stores with one small interface, chosen from the default cache backend:

* `RedisStore` when the cache is Redis (production): plain Redis keys in the cache's Redis,
  under its key prefix; read-modify-write with WATCH/MULTI, claims with SET NX, the token
  bucket step as a Lua script (one round trip).
* `DatabaseStore` otherwise (the embedded default): rows of `SharedState` locked with
  SELECT ... FOR UPDATE (SQLite's BEGIN IMMEDIATE serialises the same way).

Why not `django.core.cache` directly: the database cache's `incr` is a get followed by a
set, and two `add()` calls on an expired key can both succeed, so neither can count
failures or hand out exactly one half-open probe. Values are small JSON documents and
expire after their TTL (wall-clock seconds, the same machine clock for every process).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from integrations.conf import integration_settings

KEEP = object()
"""Returned as the new value by an updater that leaves the entry (and its expiry) as it is."""

Updater = Callable[[Any], tuple[Any, Any]]
"""fn(current value or None) -> (new value, None to delete, or KEEP; result handed back)."""


class DatabaseStore:
    """SharedState rows, each update in its own transaction with the row locked."""

    name = "database"

    def get(self, key: str) -> Any:
        from integrations.models import SharedState

        row = SharedState.objects.filter(key=key, expires__gt=time.time()).values_list("value", flat=True)
        return row.first()

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        from integrations.models import SharedState

        rows = SharedState.objects.filter(key__in=keys, expires__gt=time.time()).values_list("key", "value")
        return dict(rows)

    def update(self, key: str, fn: Updater, ttl: float) -> Any:
        from integrations.models import SharedState

        with transaction.atomic():
            row = SharedState.objects.select_for_update().filter(key=key).first()
            if row is None:
                # Insert a placeholder to lock. Two processes may race here: the loser's insert
                # (ON CONFLICT DO NOTHING) waits for the winner's commit and does nothing, then
                # the loser waits on the winner's row lock like any later caller.
                SharedState.objects.bulk_create([SharedState(key=key, value=None, expires=0)],
                                                ignore_conflicts=True)
                row = SharedState.objects.select_for_update().get(key=key)
            now = time.time()
            current = row.value if row.expires > now else None
            new, result = fn(current)
            if new is KEEP:
                return result
            if new is None:
                row.value, row.expires = None, 0
            else:
                row.value, row.expires = new, now + ttl
            row.save(update_fields=["value", "expires"])
        return result

    def add(self, key: str, value: Any, ttl: float) -> bool:
        return self.update(key, lambda cur: (value, True) if cur is None else (KEEP, False), ttl)

    def delete(self, key: str) -> None:
        from integrations.models import SharedState

        SharedState.objects.filter(key=key).update(value=None, expires=0)

    def take_token(self, key: str, *, capacity: float, rate: float, now: float, ttl: float) -> float:
        """One token-bucket step: takes a token and returns 0, or returns the seconds until
        one is due (taking nothing)."""
        return self.update(key, lambda cur: _take_token(cur, capacity, rate, now), ttl)


def _take_token(current: dict | None, capacity: float, rate: float, now: float) -> tuple[dict, float]:
    """Token bucket step: refill for the time passed, then take a token, or say how long until
    one is (without taking it, so waiters do not go into debt)."""
    if current is None:
        tokens, stamp = capacity, now
    else:
        tokens, stamp = current["tokens"], current["ts"]
    tokens = min(capacity, tokens + max(0.0, now - stamp) * rate)
    # A caller whose clock reading is older than the stamp (it waited for the lock) must not
    # move the stamp back, or the same interval would be refilled twice.
    stamp = max(stamp, now)
    # The epsilon: float rounding must not leave a waiter asking for 1e-16 s forever.
    if tokens >= 1 - 1e-9:
        return {"tokens": max(0.0, tokens - 1), "ts": stamp}, 0.0
    return {"tokens": tokens, "ts": stamp}, (1 - tokens) / rate


# The same step as _take_token, atomic inside Redis: one round trip per attempt.
_BUCKET_STEP_LUA = """
local raw = redis.call('GET', KEYS[1])
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local tokens = capacity
local stamp = now
if raw then
  local state = cjson.decode(raw)
  tokens = state['tokens']
  stamp = state['ts']
end
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
stamp = math.max(stamp, now)
local wait = 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
else
  wait = (1 - tokens) / rate
end
redis.call('SET', KEYS[1], cjson.encode({tokens = tokens, ts = stamp}), 'PX', ARGV[4])
return tostring(wait)
"""


class RedisStore:
    """Plain JSON strings in the cache's Redis, under the cache's key prefix."""

    name = "redis"

    def __init__(self):
        self._script = None

    def _client(self):
        return _redis_client(_cache_location())

    def _key(self, key: str) -> str:
        return cache.make_key(f"state:{key}")  # our own keys: nothing to validate

    def get(self, key: str) -> Any:
        raw = self._client().get(self._key(key))
        return json.loads(raw) if raw else None

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        raws = self._client().mget([self._key(k) for k in keys])
        return {k: json.loads(r) for k, r in zip(keys, raws, strict=True) if r}

    def update(self, key: str, fn: Updater, ttl: float) -> Any:
        import redis

        name = self._key(key)
        with self._client().pipeline() as pipe:
            while True:
                try:
                    pipe.watch(name)
                    raw = pipe.get(name)
                    new, result = fn(json.loads(raw) if raw else None)
                    if new is KEEP:
                        pipe.unwatch()
                        return result
                    pipe.multi()
                    if new is None:
                        pipe.delete(name)
                    else:
                        pipe.set(name, json.dumps(new), px=max(1, int(ttl * 1000)))
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # someone else changed it between our read and write: redo

    def add(self, key: str, value: Any, ttl: float) -> bool:
        return bool(self._client().set(self._key(key), json.dumps(value), nx=True, px=max(1, int(ttl * 1000))))

    def delete(self, key: str) -> None:
        self._client().delete(self._key(key))

    def take_token(self, key: str, *, capacity: float, rate: float, now: float, ttl: float) -> float:
        client = self._client()
        if self._script is None:
            self._script = client.register_script(_BUCKET_STEP_LUA)
        wait = self._script(keys=[self._key(key)], client=client,
                            args=[repr(float(capacity)), repr(float(rate)), repr(now), max(1, int(ttl * 1000))])
        return float(wait)


def _cache_location() -> str:
    """The Redis URL of the default cache (its first server when several are listed)."""
    location = settings.CACHES["default"]["LOCATION"]
    if isinstance(location, str):
        location = location.split(",")
    return location[0]


@lru_cache(maxsize=4)
def _redis_client(url: str):
    # One client per process and URL, on the public redis-py API: it is thread-safe, and its
    # connection pool starts afresh in a forked child.
    import redis

    return redis.Redis.from_url(url)


@lru_cache(maxsize=4)
def _store_for(kind: str):
    return RedisStore() if kind == "redis" else DatabaseStore()


def store() -> DatabaseStore | RedisStore:
    """The store for the current settings (follows override_settings in tests)."""
    kind = integration_settings.SHARED_STATE
    if not kind:
        backend = settings.CACHES["default"]["BACKEND"]
        kind = "redis" if backend.endswith("RedisCache") else "database"
    return _store_for(kind)


def release(key: str, token: Any) -> bool:
    """Delete `key` only if it still holds `token` (a claim we made and did not lose)."""
    return store().update(key, lambda cur: (None, True) if cur == token else (KEEP, False), ttl=1)


def purge_expired() -> int:
    """Drop expired SharedState rows (Redis expires its keys by itself)."""
    from integrations.models import SharedState

    deleted, _ = SharedState.objects.filter(expires__lt=time.time() - 60).delete()
    return deleted
