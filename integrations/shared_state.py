"""State shared by every web and worker process: circuit breakers, token buckets, OAuth tokens.

Two stores with one small interface, chosen from the default cache backend:

* `RedisStore` when the cache is Redis (production): plain Redis keys under the cache's key
  prefix, read-modify-write with WATCH/MULTI, claims with SET NX, the token bucket in Lua.
* `DatabaseStore` otherwise (the embedded default): rows of `SharedState` locked with
  SELECT ... FOR UPDATE (SQLite's BEGIN IMMEDIATE serialises the same way).

Why not `django.core.cache` directly: the database cache's `incr` is a get followed by a
set, and two `add()` calls on an expired key can both succeed, so neither can count
failures or hand out exactly one half-open probe. Values are small JSON documents and
expire after their TTL (wall-clock seconds, the same machine clock for every process).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction

from integrations.conf import setting

KEEP = object()
"""Returned as the new value by an updater that leaves the entry (and its expiry) as it is."""

UNREAD = object()
"""Stands for "this value was not read from the store" (take_token without `also_get`)."""

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
                # waits for the winner's commit, fails on the primary key, and then waits on
                # the winner's row lock like any later caller.
                try:
                    with transaction.atomic():
                        SharedState.objects.create(key=key, value=None, expires=0)
                except IntegrityError:
                    pass
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

    def take_token(self, key: str, *, capacity: float, rate: float, now: float, ttl: float,
                   also_get: str | None = None, count: int = 1) -> tuple[float, Any, int]:
        """One token-bucket step taking up to `count` tokens (at least one, never more than the
        bucket holds); returns (seconds until a token, 0 if some were taken), the value of
        `also_get` read in the same round trip (the client reads the circuit; UNREAD without
        it), and how many tokens were taken."""
        wait, taken = self.update(key, lambda cur: _take_token(cur, capacity, rate, now, count), ttl)
        return wait, (self.get(also_get) if also_get else UNREAD), taken


def _take_token(current: dict | None, capacity: float, rate: float, now: float,
                count: int = 1) -> tuple[dict, tuple[float, int]]:
    """Token bucket step: refill for the time passed, then take up to `count` of the tokens
    that are there, or say how long until one is (without taking it, so waiters do not go
    into debt)."""
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
        taken = max(1, min(count, int(tokens + 1e-9)))
        return {"tokens": max(0.0, tokens - taken), "ts": stamp}, (0.0, taken)
    return {"tokens": tokens, "ts": stamp}, ((1 - tokens) / rate, 0)


# The same step as _take_token, atomic inside Redis, plus one read: one round trip per call.
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
local taken = 0
if tokens >= 1 - 1e-9 then
  taken = math.max(1, math.min(tonumber(ARGV[5]), math.floor(tokens + 1e-9)))
  tokens = math.max(0, tokens - taken)
else
  wait = (1 - tokens) / rate
end
redis.call('SET', KEYS[1], cjson.encode({tokens = tokens, ts = stamp}), 'PX', ARGV[4])
-- KEYS[2]: a value the caller reads in the same round trip (the provider's circuit).
return {tostring(wait), redis.call('GET', KEYS[2]), taken}
"""


class RedisStore:
    """Plain JSON strings in the cache's Redis, under the cache's key prefix."""

    name = "redis"

    def __init__(self):
        self._script = None
        self._local = threading.local()  # Django's cache (and its pools) is per thread, too

    def _client(self):
        # Django's get_client() builds a new redis.Redis (and its ~170 response callbacks) on
        # every call: a quarter of a millisecond. Keep one per connection pool (redis-py
        # pools are thread-safe and reset themselves in a forked child).
        pool = cache._cache._get_connection_pool(True)
        local = self._local
        if getattr(local, "pool", None) is not pool:
            local.redis, local.pool = cache._cache._client(connection_pool=pool), pool
        return local.redis

    def _key(self, key: str) -> str:
        return cache.make_and_validate_key(f"state:{key}")

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

    def take_token(self, key: str, *, capacity: float, rate: float, now: float, ttl: float,
                   also_get: str | None = None, count: int = 1) -> tuple[float, Any, int]:
        client = self._client()
        if self._script is None:
            self._script = client.register_script(_BUCKET_STEP_LUA)
        keys = [self._key(key), self._key(also_get or key)]
        wait, other, taken = self._script(
            keys=keys, args=[repr(float(capacity)), repr(float(rate)), repr(now), max(1, int(ttl * 1000)),
                             int(count)], client=client)
        if not also_get:
            return float(wait), UNREAD, int(taken)
        return float(wait), (json.loads(other) if other else None), int(taken)


@lru_cache(maxsize=4)
def _store_for(kind: str):
    return RedisStore() if kind == "redis" else DatabaseStore()


def store() -> DatabaseStore | RedisStore:
    """The store for the current settings (follows override_settings in tests)."""
    kind = setting("INTEGRATIONS_SHARED_STATE")
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
