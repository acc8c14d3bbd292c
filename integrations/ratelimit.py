"""Client-side token bucket per provider, shared by every process.

The bucket holds up to `provider.rate_limit_requests` tokens and refills at
`rate_limit_requests / rate_limit_period` tokens a second, so all processes together
send at most that many requests per period (plus the initial burst of one full bucket).
Each attempt takes one token; when none is left the caller sleeps until one is due, as
long as its deadline allows, and otherwise gives up with RATE_LIMITED.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from integrations import shared_state


class RateLimitExceeded(Exception):
    """No token within the time left; `wait` is how long until one would be there."""

    def __init__(self, wait: float, other=None):
        super().__init__(f"no rate-limit token within the deadline (next in {wait:.3f}s)")
        self.wait = wait
        self.other = other


def rate_limit_acquire(*, provider, max_wait: float, sleep: Callable[[float], None] = time.sleep,
                       clock: Callable[[], float] = time.time, also_get: str | None = None) -> tuple[float, Any]:
    """Take a token for one request to `provider`, sleeping for it up to `max_wait` seconds.

    Returns the seconds spent waiting and the shared-state value of `also_get` as read with
    the first token request (the client reads the circuit this way: one round trip per
    call). Raises RateLimitExceeded when the next token is due later than the time left.
    """
    capacity = float(provider.rate_limit_requests)
    rate = capacity / provider.rate_limit_period
    # Idle buckets disappear once they would be full again anyway.
    ttl = provider.rate_limit_period * 2 + 1
    store = shared_state.store()
    waited = 0.0
    wait, other = store.take_token(f"ratelimit:{provider.slug}", capacity=capacity, rate=rate, now=clock(),
                                   ttl=ttl, also_get=also_get)
    while wait > 0:
        if waited + wait > max_wait:
            raise RateLimitExceeded(wait, other)
        # Others may take the token first; we then wait again, still within max_wait.
        wait = max(wait, 0.001)
        sleep(wait)
        waited += wait
        wait, _ = store.take_token(f"ratelimit:{provider.slug}", capacity=capacity, rate=rate, now=clock(),
                                   ttl=ttl)
    return waited, other
