"""Errors of the integrations core."""


class IntegrationError(Exception):
    """Base of every error this app raises on purpose."""


class ProviderNotFound(IntegrationError):
    pass


class CredentialMissing(IntegrationError):
    """A provider has no current credential for a purpose in its environment."""


class ProviderError(IntegrationError):
    """A provider call that did not succeed; `.result` is the CallResult with the details."""

    def __init__(self, result):
        self.result = result
        detail = f"HTTP {result.status}" if result.status else result.error_code
        super().__init__(f"provider {result.provider!r} {detail}: {result.message}")


class ProviderUnavailable(ProviderError):
    """The provider could not be reached in time (ECONN, ETIMEDOUT, 5xx, 408, 429,
    CIRCUIT_OPEN, RATE_LIMITED, PROVIDER_DISABLED): the outcome is unknown or nothing happened,
    so the same request with the same idempotency key may be tried again later.

    Adapters raise it too, with the call's result, for answers their domain reads as "not now"
    (the payment adapters' 401/403/404/409/423): `.result.error_code` stays e.g. HTTP_401."""


class ProviderBadResponse(ProviderUnavailable):
    """The provider answered something that is not the JSON it should be (EBADRESPONSE).

    A subclass of ProviderUnavailable because, as with a timeout, whether the provider acted
    is unknown: callers retry later with the same idempotency key."""


class ProviderRejected(ProviderError):
    """The provider answered a 4xx (other than 408/429): the request itself was refused."""
