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

The provider's own quota is the other half: many APIs say on every answer how many requests
are left (`X-RateLimit-Remaining`) and when the count starts again (`X-RateLimit-Reset`).
`rate_limit_learn` reads those headers after each attempt; when nothing is left it empties
the shared bucket into debt, so that its next token is due exactly at the reset (a
`Retry-After` on the same answer wins). Every process's next attempt then waits for that
token like any other, within its deadline, and after the reset the bucket refills at its
usual rate instead of bursting. No extra round trip to the shared store per attempt: the
pause is the bucket's own state. (A pause longer than the bucket's idle expiry, 2 periods
+ 1 s, is forgotten if no process calls meanwhile; the next answer teaches it again.)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping

from integrations import shared_state
from integrations.conf import integration_settings

logger = logging.getLogger("integrations.client")

# An X-RateLimit-Reset above this is a Unix time (GitHub's style), below it a number of
# seconds (the IETF draft's and most others').
_EPOCH_THRESHOLD = 1_000_000_000


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


def quota_wait(headers: Mapping[str, str], *, now: float, retry_after: float | None = None) -> float | None:
    """Seconds until the provider serves us again according to its answer's headers: None
    while `X-RateLimit-Remaining` is absent or above 0; else `retry_after` when the answer
    had one, or `X-RateLimit-Reset` (seconds, or a Unix time when that large)."""
    remaining = _number(headers.get("X-RateLimit-Remaining"))
    if remaining is None or remaining >= 1:
        return None
    if retry_after is not None:
        return retry_after
    reset = _number(headers.get("X-RateLimit-Reset"))
    if reset is None:
        return None
    return max(0.0, reset - now if reset > _EPOCH_THRESHOLD else reset)


def rate_limit_learn(*, provider, headers: Mapping[str, str], retry_after: float | None = None,
                     clock: Callable[[], float] = time.time) -> float | None:
    """Learn the provider's quota from an answer's headers: when none is left, pause every
    process's calls to it until the reset (capped at INTEGRATIONS_RETRY_AFTER_MAX). Returns
    the pause in seconds, or None (nothing learned; the shared store was not touched)."""
    now = clock()
    wait = quota_wait(headers, now=now, retry_after=retry_after)
    if not wait:
        return None
    wait = min(wait, float(integration_settings.RETRY_AFTER_MAX))
    key, capacity, rate, ttl = _bucket(provider)
    until = now + wait

    def owe(current):
        # The bucket's state is (tokens, ts); tokens refill at `rate` from ts. Owing
        # (until - ts) * rate - 1 tokens makes the next one due at `until`, for every process.
        stamp = max(now, current["ts"]) if current else now
        target = 1 - (until - stamp) * rate
        if current and min(capacity, current["tokens"] + (stamp - current["ts"]) * rate) <= target:
            return shared_state.KEEP, None  # already paused as long (a concurrent answer said so)
        return {"tokens": target, "ts": stamp}, None

    shared_state.store().update(key, owe, ttl + wait)
    logger.info("provider quota used up: pausing calls for %.1fs", wait,
                extra={"provider": provider.slug, "rate_limit_pause": wait})
    return wait


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


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
