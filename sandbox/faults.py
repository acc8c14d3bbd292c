"""Scripted failures: what the next requests and webhook deliveries should suffer.

A test posts a plan to `/_control/faults` and the sandbox consumes it in order, so a
sequence such as "two 503s, then a dropped response" is exact and repeatable. A single
request can also ask for its own fault with the `X-Sandbox-Fault` header.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

REQUEST_ACTIONS = {"error", "rate_limited", "delay", "drop"}
WEBHOOK_ACTIONS = {"webhook_duplicate", "webhook_delay", "webhook_reorder"}


class FaultSpecError(ValueError):
    """A fault plan or header that cannot be understood; the message says what is wrong."""


@dataclass
class Fault:
    """One entry of the plan, consumed `count` times.

    `action` is one of:
    - `error`: answer `status` (a 5xx by default 503) without processing;
    - `rate_limited`: answer 429 with `Retry-After: retry_after` without processing;
    - `delay`: wait `ms` milliseconds, `phase` "before" processing or "after" it;
    - `drop`: process the request, then close the connection without answering;
    - `webhook_duplicate`: deliver the next event twice;
    - `webhook_delay`: deliver the next event `ms` milliseconds late;
    - `webhook_reorder`: hold the next `count` events and deliver them newest first
      (released early after `max_wait_ms` if fewer arrive).
    Request faults match on `method` and a `path` prefix (default: every /v1/ request).
    """

    action: str
    count: int = 1
    status: int = 503
    retry_after: int | str = 1
    ms: int = 0
    phase: str = "before"
    max_wait_ms: int = 5000
    method: str | None = None
    path: str | None = None

    @classmethod
    def parse(cls, raw: object) -> Fault:
        if not isinstance(raw, dict):
            raise FaultSpecError("each fault must be a JSON object")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise FaultSpecError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        fault = cls(**raw)
        fault.validate()
        return fault

    def validate(self) -> None:
        if self.action not in REQUEST_ACTIONS | WEBHOOK_ACTIONS:
            allowed = ", ".join(sorted(REQUEST_ACTIONS | WEBHOOK_ACTIONS))
            raise FaultSpecError(f"unknown action {self.action!r}; one of: {allowed}")
        if not _is_int(self.count) or self.count < 1:
            raise FaultSpecError("count must be an integer >= 1")
        if self.action == "error" and (not _is_int(self.status) or not 400 <= self.status <= 599):
            raise FaultSpecError("status must be an HTTP error status (400-599)")
        if not _is_int(self.ms) or not 0 <= self.ms <= 120_000:
            raise FaultSpecError("ms must be an integer between 0 and 120000")
        if not _is_int(self.max_wait_ms) or not 0 <= self.max_wait_ms <= 120_000:
            raise FaultSpecError("max_wait_ms must be an integer between 0 and 120000")
        if self.phase not in {"before", "after"}:
            raise FaultSpecError("phase must be 'before' or 'after'")
        if not isinstance(self.retry_after, int | str) or isinstance(self.retry_after, bool):
            raise FaultSpecError("retry_after must be seconds (integer) or an HTTP date (string)")
        if self.path is not None and (not isinstance(self.path, str) or not self.path.startswith("/")):
            raise FaultSpecError("path must be a path prefix starting with '/'")
        if self.method is not None:
            if not isinstance(self.method, str):
                raise FaultSpecError("method must be a string such as 'POST'")
            self.method = self.method.upper()

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        return path.startswith(self.path or "/v1/")

    @property
    def is_webhook(self) -> bool:
        return self.action in WEBHOOK_ACTIONS


@dataclass
class RateLimit:
    """At most `requests` API requests in any sliding window of `period` seconds."""

    requests: int
    period: float
    _hits: deque = field(default_factory=deque, repr=False)

    @classmethod
    def parse(cls, raw: object) -> RateLimit | None:
        if raw is None:
            return None
        if not isinstance(raw, dict) or set(raw) != {"requests", "period"}:
            raise FaultSpecError('rate_limit must be {"requests": N, "period": seconds} or null')
        requests, period = raw["requests"], raw["period"]
        if not _is_int(requests) or requests < 1:
            raise FaultSpecError("rate_limit.requests must be an integer >= 1")
        if isinstance(period, bool) or not isinstance(period, int | float) or not 0 < period <= 3600:
            raise FaultSpecError("rate_limit.period must be seconds, > 0 and <= 3600")
        return cls(requests=requests, period=float(period))

    def hit(self, now: float) -> int | None:
        """Count a request at `now`; None when allowed, else the seconds to wait."""
        while self._hits and self._hits[0] <= now - self.period:
            self._hits.popleft()
        if len(self._hits) < self.requests:
            self._hits.append(now)
            return None
        return max(1, math.ceil(self._hits[0] + self.period - now))

    def describe(self) -> dict:
        return {"requests": self.requests, "period": self.period}


class FaultPlan:
    """The thread-safe queue of faults; request handlers and the webhook sender take from it."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self._faults: list[Fault] = []
        self._rate_limit: RateLimit | None = None

    def configure(self, body: object, *, replace: bool) -> None:
        """Apply a `/_control/faults` body: `{"faults": [...], "rate_limit": {...}|null}`.

        With `replace` the current plan is dropped first; otherwise faults are appended
        and `rate_limit` changes only when present. Nothing changes if any part is invalid.
        """
        if not isinstance(body, dict):
            raise FaultSpecError("the body must be a JSON object")
        unknown = set(body) - {"faults", "rate_limit"}
        if unknown:
            raise FaultSpecError(f"unknown field(s): {', '.join(sorted(unknown))}")
        raw_faults = body.get("faults", [])
        if not isinstance(raw_faults, list):
            raise FaultSpecError("faults must be a list")
        faults = [Fault.parse(raw) for raw in raw_faults]
        rate_limit = RateLimit.parse(body.get("rate_limit"))
        with self._lock:
            if replace:
                self._faults, self._rate_limit = [], None
            self._faults.extend(faults)
            if "rate_limit" in body or replace:
                self._rate_limit = rate_limit

    def clear(self) -> None:
        with self._lock:
            self._faults, self._rate_limit = [], None

    def take_request_fault(self, method: str, path: str) -> Fault | None:
        """The first pending request fault matching this request, consumed once."""
        return self._take(lambda f: not f.is_webhook and f.matches(method, path))

    def take_webhook_fault(self) -> Fault | None:
        return self._take(lambda f: f.is_webhook)

    def rate_limited(self) -> int | None:
        """Seconds to wait when this request is over the configured rate limit, else None."""
        with self._lock:
            if self._rate_limit is None:
                return None
            return self._rate_limit.hit(self._clock())

    def describe(self) -> dict:
        with self._lock:
            return {
                "faults": [asdict(f) for f in self._faults],
                "rate_limit": self._rate_limit.describe() if self._rate_limit else None,
            }

    def _take(self, predicate: Callable[[Fault], bool]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if predicate(fault):
                    if fault.action == "webhook_reorder":
                        # Its count is the size of one reordered batch, taken whole.
                        self._faults.remove(fault)
                        return fault
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    # A copy with count 1: the caller applies it once.
                    return Fault(**{**asdict(fault), "count": 1})
        return None


def parse_fault_header(value: str) -> Fault:
    """`X-Sandbox-Fault` for one request: comma-separated items, for example
    `status=503`, `status=429, retry_after=2`, `delay_ms=1500`, `delay_ms=800, phase=after`
    or `drop`."""
    items: dict[str, str] = {}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, raw = part.partition("=")
        items[name.strip().lower()] = raw.strip()
    unknown = set(items) - {"status", "retry_after", "delay_ms", "phase", "drop"}
    if unknown or not items:
        raise FaultSpecError(
            "X-Sandbox-Fault takes status=5xx|429, retry_after=N, delay_ms=N, phase=before|after or drop"
        )
    try:
        if "drop" in items:
            fault = Fault(action="drop")
        elif "delay_ms" in items:
            fault = Fault(action="delay", ms=int(items["delay_ms"]), phase=items.get("phase", "before"))
        elif items.get("status") == "429":
            retry_after: int | str = items.get("retry_after", "1")
            retry_after = int(retry_after) if str(retry_after).isdigit() else retry_after
            fault = Fault(action="rate_limited", retry_after=retry_after)
        elif "status" in items:
            fault = Fault(action="error", status=int(items["status"]))
        else:
            raise FaultSpecError("X-Sandbox-Fault needs status=, delay_ms= or drop")
    except ValueError as err:
        raise FaultSpecError(f"X-Sandbox-Fault: {err}") from err
    fault.validate()
    return fault


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
