"""The retry policy: which failures are transient, full-jitter backoff, and `Retry-After`."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from integrations.client.results import ECONN, ETIMEDOUT, RETRYABLE_STATUSES

# The provider may have acted on these: only an idempotency key makes a second attempt safe.
UNSAFE_WITHOUT_KEY = frozenset({"POST", "PATCH"})


def is_transient(*, status: int | None, error_code: str | None) -> bool:
    """Whether an attempt's failure may go away by itself: no connection, a timeout, 408, 429
    or 5xx. Any other answer is final."""
    if error_code in (ECONN, ETIMEDOUT):
        return True
    return status is not None and (status in RETRYABLE_STATUSES or status >= 500)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date. None if absent
    or unreadable; never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(*, retry: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**retry)), `retry` counting from 0 for the
    wait before the second attempt."""
    return rng.uniform(0, min(cap, base * 2**retry))


@dataclass(frozen=True)
class Decision:
    """After a failed attempt: wait `delay` seconds and try again, or stop (`delay` None).
    `past_deadline` when a 429's Retry-After is longer than the time left: the call ends
    RATE_LIMITED, so a background task can reschedule instead of sleeping."""

    delay: float | None = None
    past_deadline: bool = False


def decide(*, method: str, idempotency_key: str | None, status: int | None, error_code: str | None,
           retry_after: float | None, attempt: int, max_attempts: int, time_left: float,
           backoff_base: float, backoff_max: float, retry_after_max: float, rng: random.Random) -> Decision:
    """Whether and when to retry a failed attempt (a successful one is never retried)."""
    if not is_transient(status=status, error_code=error_code):
        return Decision()
    if method in UNSAFE_WITHOUT_KEY and not idempotency_key:
        return Decision()  # the provider may have acted: only a key makes a retry safe
    if retry_after is not None and status == 429 and min(retry_after, retry_after_max) > time_left:
        return Decision(past_deadline=True)
    if attempt >= max_attempts:
        return Decision()
    if retry_after is not None:
        delay = min(retry_after, retry_after_max)
    else:
        delay = backoff_delay(retry=attempt - 1, base=backoff_base, cap=backoff_max, rng=rng)
    if delay >= time_left:
        return Decision()  # no wait that would pass the deadline is started
    return Decision(delay=delay)
