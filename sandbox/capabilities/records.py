"""Records: `GET /v1/records`, cursor pages over the deterministic dataset of sandbox/records.py,
behind the partner's own rate limit.

Like a real partner API the endpoint limits callers (default 100 requests a minute, in any
sliding window) and says so on every answer: `X-RateLimit-Limit`, `X-RateLimit-Remaining`
(after this request) and `X-RateLimit-Reset` (seconds until a request is allowed again, 0
when one is left); over the limit it answers `429` with `Retry-After`. Tests drive it with
`POST /_control/records`: change the limit (`null` lifts it) and edit records (each edit is
a new revision of the record, while cursors already handed out stay valid).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from sandbox import records as dataset
from sandbox.capabilities.base import Capability
from sandbox.faults import FaultSpecError, RateLimit
from sandbox.messages import ApiError, SandboxRequest, SandboxResponse, invalid
from sandbox.params import parse_json
from sandbox.routing import Route

DEFAULT_RATE_LIMIT = {"requests": 100, "period": 60}
# Accepted-request times kept for the stats' busiest window: 2,000 pages make a full import.
_KEEP_TIMES = 100_000


@dataclass
class SlidingWindow:
    """At most `requests` requests in any `period` seconds; it remembers when each was let in."""

    requests: int
    period: float
    _hits: deque = field(default_factory=deque, repr=False)

    def take(self, now: float) -> tuple[bool, int, float]:
        """Count a request at `now`: (allowed, requests left after it, seconds until the next
        one is allowed: 0 while some are left)."""
        while self._hits and self._hits[0] <= now - self.period:
            self._hits.popleft()
        allowed = len(self._hits) < self.requests
        if allowed:
            self._hits.append(now)
        remaining = self.requests - len(self._hits)
        reset = 0.0 if remaining else self._hits[0] + self.period - now
        return allowed, remaining, reset


class Records(Capability):
    """A partner's bulk export. Record n is always the same unless a test edits it."""

    def __init__(self, sandbox):
        self.limit: SlidingWindow | None = SlidingWindow(**DEFAULT_RATE_LIMIT)
        super().__init__(sandbox)

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v1/records", self.records_list),
            Route("GET", "/_control/records", self.control),
            Route("POST", "/_control/records", self.control),
        ]

    def reset(self) -> None:
        # The configured limit stays (configuration survives a reset); its window and the
        # counters start again, and edited records are back to revision 0.
        if self.limit is not None:
            self.limit = SlidingWindow(self.limit.requests, self.limit.period)
        self.revisions: dict[int, int] = {}
        self.counts = {"requests": 0, "served": 0, "rate_limited": 0}
        self.accepted_at: list[float] = []

    def stats(self) -> dict:
        return {"records": {**self.counts, "rate_limit": self._describe_limit(),
                            "busiest_window": self._busiest_window(), "edited": len(self.revisions)}}

    # --- the API -----------------------------------------------------------------------
    def records_list(self, request: SandboxRequest) -> SandboxResponse:
        headers, allowed, wait = self._count()
        if not allowed:
            return ApiError(429, "rate_limit_error", "Too many requests: the records API allows "
                            f"{self.limit.requests} per {self.limit.period:g}s.",
                            code="rate_limit").response({**headers, "Retry-After": str(max(1, math.ceil(wait)))})
        try:
            page = self._page(request)
        except ApiError as err:
            return err.response(headers)
        return SandboxResponse(200, page, headers)

    def _count(self) -> tuple[dict[str, str], bool, float]:
        """Count this request against the window: (rate-limit headers, allowed, seconds to wait)."""
        with self.sandbox.lock:
            self.counts["requests"] += 1
            if self.limit is None:
                self.counts["served"] += 1
                return {}, True, 0.0
            now = self.sandbox.clock()
            allowed, remaining, reset = self.limit.take(now)
            self.counts["served" if allowed else "rate_limited"] += 1
            if allowed and len(self.accepted_at) < _KEEP_TIMES:
                self.accepted_at.append(now)
            headers = {"X-RateLimit-Limit": str(self.limit.requests), "X-RateLimit-Remaining": str(remaining),
                       "X-RateLimit-Reset": str(math.ceil(reset))}
            return headers, allowed, reset

    def _page(self, request: SandboxRequest) -> dict:
        raw_limit = request.query.get("limit") or str(dataset.DEFAULT_LIMIT)
        if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= dataset.MAX_LIMIT:
            raise invalid(f"limit must be an integer from 1 to {dataset.MAX_LIMIT}.", param="limit")
        cursor = request.query.get("cursor") or None
        starting_after = request.query.get("starting_after") or None
        if cursor and starting_after:
            raise invalid("Pass cursor or starting_after, not both.", param="cursor")
        with self.sandbox.lock:
            revisions = dict(self.revisions) if self.revisions else None
        try:
            return dataset.page(cursor=cursor, limit=int(raw_limit), starting_after=starting_after,
                                revisions=revisions)
        except dataset.CursorError as err:
            param = "cursor" if cursor else "starting_after"
            raise invalid(f"{param} is not one this API returned.", param=param) from err

    # --- /_control/records ---------------------------------------------------------------
    def control(self, request: SandboxRequest) -> SandboxResponse:
        """GET: the limit and counters. POST `{"rate_limit": {"requests": N, "period": s} | null,
        "edit": [record numbers]}`: change the limit (null lifts it), make a new revision of
        each listed record. Both optional; nothing changes if either is invalid."""
        if request.method == "POST":
            data = parse_json(request.body)
            if not isinstance(data, dict) or set(data) - {"rate_limit", "edit"}:
                raise invalid('the body takes "rate_limit" and "edit"')
            edit = data.get("edit", [])
            if not isinstance(edit, list) or not all(
                    isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= dataset.TOTAL for n in edit):
                raise invalid(f"edit must be a list of record numbers from 1 to {dataset.TOTAL}", param="edit")
            try:
                limit = RateLimit.parse(data.get("rate_limit"))
            except FaultSpecError as err:
                raise invalid(str(err), param="rate_limit") from err
            with self.sandbox.lock:
                if "rate_limit" in data:
                    self.limit = SlidingWindow(limit.requests, limit.period) if limit else None
                for number in edit:
                    self.revisions[number] = self.revisions.get(number, 0) + 1
        with self.sandbox.lock:
            return SandboxResponse(200, self.stats()["records"])

    def _describe_limit(self) -> dict | None:
        return {"requests": self.limit.requests, "period": self.limit.period} if self.limit else None

    def _busiest_window(self) -> int:
        """The most requests let in during any window of the limit's period (the limit holds
        when this is at most `requests`); over 60 s when no limit is set."""
        period = self.limit.period if self.limit else 60.0
        times, most, start = self.accepted_at, 0, 0
        for end, now in enumerate(times):
            while times[start] <= now - period:
                start += 1
            most = max(most, end - start + 1)
        return most
