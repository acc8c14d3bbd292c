"""What a call returns: `CallResult`, the contract error codes, and how an answer becomes a result."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from requests.structures import CaseInsensitiveDict

from integrations.errors import ProviderBadResponse, ProviderRejected, ProviderUnavailable

# The contract's codes (docs/outbound-client.md), plus HTTP_<status> built from the answer.
ECONN, ETIMEDOUT, CIRCUIT_OPEN, RATE_LIMITED = "ECONN", "ETIMEDOUT", "CIRCUIT_OPEN", "RATE_LIMITED"
# Ours: a 2xx we cannot read, and a provider switched off in the admin.
EBADRESPONSE, PROVIDER_DISABLED = "EBADRESPONSE", "PROVIDER_DISABLED"
# Codes that mean "not reached in time / outcome unknown" (ProviderUnavailable).
UNAVAILABLE_CODES = frozenset({ECONN, ETIMEDOUT, CIRCUIT_OPEN, RATE_LIMITED, PROVIDER_DISABLED})
RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass
class CallResult:
    """The outcome of one call (all its attempts). `ok` is a 2xx with a readable answer.

    `data` is the parsed JSON body whenever the answer had one, error answers included
    (adapters read decline details from it). `error_code` is None when ok, else a contract
    code: ECONN, ETIMEDOUT, HTTP_<status>, CIRCUIT_OPEN, RATE_LIMITED, EBADRESPONSE (or
    PROVIDER_DISABLED). `retry_after` is the wait the provider (or the rate limit) asked for.
    `maybe_delivered` (failures without an answer only) is True when the request may have
    reached the provider (read timeout, connection lost after sending), False when it
    certainly did not (refused, DNS, connect timeout, or never sent: circuit open, ...).
    """

    ok: bool
    status: int | None = None
    data: Any = None
    error_code: str | None = None
    message: str = ""
    attempts: int = 0
    latency_ms: float = 0.0
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=CaseInsensitiveDict)
    provider: str = ""
    cached: bool = False
    text: str = ""
    maybe_delivered: bool = False

    def raise_for_error(self) -> CallResult:
        """Return self when ok; else raise ProviderUnavailable (not reached in time, outcome
        unknown), ProviderBadResponse (unreadable answer) or ProviderRejected (a 4xx)."""
        if self.ok:
            return self
        if self.error_code == EBADRESPONSE:
            raise ProviderBadResponse(self)
        if self.error_code in UNAVAILABLE_CODES or self.status is None:
            raise ProviderUnavailable(self)
        if self.status in RETRYABLE_STATUSES or self.status >= 500:
            raise ProviderUnavailable(self)
        if 400 <= self.status < 500:
            raise ProviderRejected(self)
        raise ProviderBadResponse(self)  # 1xx/3xx: redirects are never followed


def result_from_exchange(exchange, *, expect_json: bool, provider: str, attempt: int,
                         retry_after: float | None) -> CallResult:
    """The CallResult of one attempt's `transport.Exchange`; `retry_after` is its Retry-After
    header in seconds (see retry.parse_retry_after)."""
    if exchange.status is None or (exchange.error_code and exchange.error_code != EBADRESPONSE):
        return CallResult(ok=False, error_code=exchange.error_code, message=exchange.message,
                          attempts=attempt, provider=provider, maybe_delivered=exchange.maybe_delivered)
    status = exchange.status
    common = {"status": status, "attempts": attempt, "provider": provider, "headers": exchange.headers}
    if exchange.error_code == EBADRESPONSE:
        return CallResult(ok=False, error_code=EBADRESPONSE, message=exchange.message, **common)
    text = exchange.body.decode("utf-8", errors="replace")
    data, readable = None, True
    if exchange.body.strip():
        try:
            data = json.loads(exchange.body)
        except ValueError:
            readable = not expect_json
    if 200 <= status < 300:
        if not readable:
            return CallResult(ok=False, error_code=EBADRESPONSE, text=text[:1000], retry_after=retry_after,
                              message=f"HTTP {status} answer is not JSON", **common)
        return CallResult(ok=True, data=data, text=text if data is None else "", **common)
    message = f"HTTP {status}" + ("" if readable else " (answer is not JSON)")
    return CallResult(ok=False, data=data, error_code=f"HTTP_{status}", message=message,
                      retry_after=retry_after, text=text[:1000] if data is None else "", **common)
