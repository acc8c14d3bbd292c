"""The resilient outbound client: every call to a provider goes through `ProviderClient`.

    client = ProviderClient(provider)
    result = client.request("POST", "/v1/charges", data={...}, idempotency_key=key,
                            operation="charge.create")
    if not result.ok: ...            # or result.raise_for_error()

Per call: the provider's policy (re-read from its row), an optional read-through cache,
then attempts until one succeeds, fails for good, or the deadline comes. Per attempt: the
two gates (the shared circuit breaker, then a token from the shared rate limit),
authentication, one HTTP exchange under separate connect/read timeouts, a log line and
metrics. Transient failures are retried with full-jitter backoff or the provider's
Retry-After. See docs/outbound-client.md.

The modules: `core` (ProviderClient), `transport` (one HTTP exchange, timeouts, deadline),
`results` (CallResult, error codes), `retry` (what is retried, backoff, Retry-After),
`oauth2` (the token request); credentials and schemes are `integrations.auth`'s, the gates
`integrations.circuit` and `integrations.ratelimit`.
"""

from integrations.client.core import ProviderClient
from integrations.client.results import (
    CIRCUIT_OPEN,
    EBADRESPONSE,
    ECONN,
    ETIMEDOUT,
    PROVIDER_DISABLED,
    RATE_LIMITED,
    RETRYABLE_STATUSES,
    UNAVAILABLE_CODES,
    CallResult,
)
from integrations.client.retry import UNSAFE_WITHOUT_KEY, backoff_delay, parse_retry_after
from integrations.client.transport import USER_AGENT, form_encode
from integrations.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)

__all__ = [
    "CIRCUIT_OPEN", "EBADRESPONSE", "ECONN", "ETIMEDOUT", "PROVIDER_DISABLED", "RATE_LIMITED",
    "RETRYABLE_STATUSES", "UNAVAILABLE_CODES", "UNSAFE_WITHOUT_KEY", "USER_AGENT",
    "CallResult", "ProviderBadResponse", "ProviderClient", "ProviderError", "ProviderRejected",
    "ProviderUnavailable", "backoff_delay", "form_encode", "parse_retry_after",
]
