"""Client-side token bucket per provider, shared by every process through integrations.shared_state.

The bucket holds up to `provider.rate_limit_requests` tokens and refills at
`rate_limit_requests / rate_limit_period` tokens a second, so all processes together send
at most that many requests per period (plus the initial burst of one full bucket). Each
attempt, retries included, takes one token from the shared bucket: one atomic step in the
shared store (a Lua script on Redis, a locked row on the database). When none is left the
caller sleeps until one is due, as long as its deadline allows, and otherwise gives up with
RATE_LIMITED.

Like the circuit breaker it is a gate with two steps around each attempt: `rate_limit_permit`
before it and `rate_limit_record` after it. A token is spent once the request may have left;
only an attempt that was never sent gives its token back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from integrations import shared_state


class RateLimitExceeded(Exception):
    """No token within the time left; `wait` is how long until one would be there."""

    def __init__(self, wait: float):
        super().__init__(f"no rate-limit token within the deadline (next in {wait:.3f}s)")
        self.wait = wait


def _bucket(provider) -> tuple[str, float, float, float]:
    """(shared-state key, capacity, refill rate per second, ttl) of `provider`'s bucket."""
    capacity = float(provider.rate_limit_requests)
    period = float(provider.rate_limit_period)
    # Idle buckets disappear once they would be full again anyway.
    return f"ratelimit:{provider.slug}", capacity, capacity / period, period * 2 + 1


def rate_limit_permit(*, provider, max_wait: float, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.time) -> float:
    """Take a token for one attempt to `provider`, sleeping for it up to `max_wait` seconds;
    returns the seconds spent waiting. Raises RateLimitExceeded, without sleeping, when the
    next token is due later than that. `clock` is the bucket's shared (wall) clock."""
    key, capacity, rate, ttl = _bucket(provider)
    store = shared_state.store()
    waited = 0.0
    wait = store.take_token(key, capacity=capacity, rate=rate, now=clock(), ttl=ttl)
    while wait > 0:
        if waited + wait > max_wait:
            raise RateLimitExceeded(wait)
        # Others may take the token first; we then wait again, still within max_wait.
        wait = max(wait, 0.001)
        sleep(wait)
        waited += wait
        wait = store.take_token(key, capacity=capacity, rate=rate, now=clock(), ttl=ttl)
    return waited


def rate_limit_record(*, provider, sent: bool) -> None:
    """Report what became of a permitted attempt. A token whose request was never sent (the
    circuit refused it, or authentication failed first) goes back to the bucket; one that may
    have reached the provider stays spent, whatever the answer."""
    if sent:
        return
    key, capacity, _rate, ttl = _bucket(provider)

    def give_back(current):
        # Capped at capacity, so the bucket never holds more than if the token had stayed.
        if current is None:
            return shared_state.KEEP, None  # expired: it is full again anyway
        return {**current, "tokens": min(capacity, current["tokens"] + 1)}, None

    shared_state.store().update(key, give_back, ttl)
