"""Client-side token bucket per provider, shared by every process, leased in small batches.

The bucket holds up to `provider.rate_limit_requests` tokens and refills at
`rate_limit_requests / rate_limit_period` tokens a second, so all processes together
send at most that many requests per period (plus the initial burst of one full bucket).
Each attempt uses one token; when none is left the caller sleeps until one is due, as
long as its deadline allows, and otherwise gives up with RATE_LIMITED.

Leases (why the shared store is not on every call's path): when the provider's rate is high
enough, a process takes up to `lease_size` tokens from the shared bucket in one round trip
and keeps them in a process-local reserve for at most `lease_seconds`; unused tokens are
thrown away when the lease expires. A lease only takes tokens that are in the shared bucket.
To keep "never more than the limit" exact although a leased token may be spent up to
`lease_seconds` after it left the bucket, the bucket of a leasing provider holds at most
`capacity - rate * lease_seconds` tokens: in any window of W seconds the requests sent use
tokens taken in the window or in the `lease_seconds` before it, at most
(capacity - rate * lease_seconds) + rate * (W + lease_seconds) = capacity + rate * W. What
leasing costs is fairness and utilisation (a process may hold tokens another one waits for,
and unused ones are lost), never the limit. Slow providers (fewer than two tokens per lease)
do not lease: every attempt takes its token from the shared bucket, exactly as before.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from integrations import shared_state
from integrations.conf import setting


class RateLimitExceeded(Exception):
    """No token within the time left; `wait` is how long until one would be there. `other`
    is the shared value read with the token request (shared_state.UNREAD if none)."""

    def __init__(self, wait: float, other=shared_state.UNREAD):
        super().__init__(f"no rate-limit token within the deadline (next in {wait:.3f}s)")
        self.wait = wait
        self.other = other


@dataclass(frozen=True)
class LeasePolicy:
    """How a process leases tokens of one provider: `size` tokens per shared round trip,
    kept at most `seconds`; `shared_capacity` is the bucket size that keeps the limit
    exact (see the module docstring). size == 1 means no leasing."""

    size: int
    seconds: float
    shared_capacity: float


def lease_policy(provider) -> LeasePolicy:
    """The lease policy for `provider`'s current rate limit.

    A lease lasts min(INTEGRATIONS_RATE_LIMIT_LEASE_FRACTION * period,
    INTEGRATIONS_RATE_LIMIT_LEASE_SECONDS) and holds what the bucket refills in that time,
    at most INTEGRATIONS_RATE_LIMIT_LEASE_MAX tokens. Below two tokens: no leasing.
    """
    capacity = float(provider.rate_limit_requests)
    period = float(provider.rate_limit_period)
    rate = capacity / period
    fraction = min(0.5, max(0.0, float(setting("INTEGRATIONS_RATE_LIMIT_LEASE_FRACTION"))))
    seconds = min(fraction * period, float(setting("INTEGRATIONS_RATE_LIMIT_LEASE_SECONDS")))
    size = min(int(setting("INTEGRATIONS_RATE_LIMIT_LEASE_MAX")), int(rate * seconds + 1e-9))
    if size < 2:
        return LeasePolicy(size=1, seconds=0.0, shared_capacity=capacity)
    return LeasePolicy(size=size, seconds=seconds, shared_capacity=capacity - rate * seconds)


class _Reserve:
    """Leased tokens of this process, per provider and policy. Each lease keeps its own
    expiry (threads may lease at the same time); the oldest is spent first."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._leases: dict[tuple, list[list[float]]] = {}

    def _check_pid(self) -> None:
        # A forked child must not spend its parent's tokens: the parent still has them.
        if self._pid != os.getpid():
            self._pid, self._leases = os.getpid(), {}

    def take(self, key: tuple, now: float) -> bool:
        with self._lock:
            self._check_pid()
            leases = self._leases.get(key)
            while leases:
                expires, left = leases[0]
                if expires <= now or left < 1:
                    leases.pop(0)
                    continue
                leases[0][1] = left - 1
                return True
            return False

    def put(self, key: tuple, *, expires: float, count: int) -> None:
        if count < 1:
            return
        with self._lock:
            self._check_pid()
            leases = self._leases.setdefault(key, [])
            leases.append([expires, float(count)])
            leases.sort(key=lambda lease: lease[0])

    def clear(self) -> None:
        with self._lock:
            self._leases = {}


_reserve = _Reserve()
_monotonic = time.monotonic  # the leases' clock (tests replace it)


def local_reset() -> None:
    """Forget this process's leased tokens (tests; a provider's bucket being reset)."""
    _reserve.clear()


def rate_limit_acquire(*, provider, max_wait: float, sleep: Callable[[float], None] = time.sleep,
                       clock: Callable[[], float] = time.time, also_get: str | None = None,
                       monotonic: Callable[[], float] | None = None) -> tuple[float, Any]:
    """Take a token for one request to `provider`, sleeping for it up to `max_wait` seconds.

    Returns the seconds spent waiting and the shared-state value of `also_get` as read with
    the token request (the client reads the circuit this way: one round trip), or
    shared_state.UNREAD when the token came from this process's leased reserve and the store
    was not asked. Raises RateLimitExceeded when the next token is due later than the time left.
    `clock` is the shared (wall) clock of the bucket, `monotonic` the local one of leases.
    """
    monotonic = monotonic or _monotonic
    policy = lease_policy(provider)
    capacity = float(provider.rate_limit_requests)
    store = shared_state.store()
    reserve_key = (store.name, provider.pk, provider.slug, capacity, float(provider.rate_limit_period))
    if policy.size > 1 and _reserve.take(reserve_key, monotonic()):
        return 0.0, shared_state.UNREAD

    rate = capacity / provider.rate_limit_period
    # Idle buckets disappear once they would be full again anyway.
    ttl = provider.rate_limit_period * 2 + 1
    key = f"ratelimit:{provider.slug}"
    waited = 0.0
    # The lease's life starts before the round trip: it can only end early, never late.
    leased_at = monotonic()
    wait, other, taken = store.take_token(key, capacity=policy.shared_capacity, rate=rate, now=clock(),
                                          ttl=ttl, also_get=also_get, count=policy.size)
    while wait > 0:
        if waited + wait > max_wait:
            raise RateLimitExceeded(wait, other)
        # Others may take the token first; we then wait again, still within max_wait.
        wait = max(wait, 0.001)
        sleep(wait)
        waited += wait
        leased_at = monotonic()
        wait, _, taken = store.take_token(key, capacity=policy.shared_capacity, rate=rate, now=clock(),
                                          ttl=ttl, count=policy.size)
    if taken > 1:
        _reserve.put(reserve_key, expires=leased_at + policy.seconds, count=taken - 1)
    return waited, other
