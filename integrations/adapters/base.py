"""The payment adapter interface: dataclasses in and out, one small base class per wire format.

An adapter turns a provider-neutral request into one HTTP call through the outbound
client (which owns auth, timeouts, retries, the circuit breaker and rate limits) and the
answer back into a provider-neutral result. A kind offers payments by naming its
`PaymentAdapter` subclass in its module: `Kind(..., adapters={"payments": ...})`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChargeRequest:
    amount: int  # minor units
    currency: str  # ISO 4217, lower case on the wire
    source: str
    idempotency_key: str  # the charge's outbound key: the same on every attempt
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChargeResult:
    """The provider's view of a charge. `status` is succeeded, failed (a decline) or pending."""

    status: str
    provider_charge_id: str = ""
    amount_refunded: int = 0
    failure_code: str = ""
    failure_message: str = ""

    @property
    def declined(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True)
class RefundRequest:
    provider_charge_id: str
    amount: int
    idempotency_key: str


@dataclass(frozen=True)
class RefundResult:
    status: str  # succeeded, failed or pending
    provider_refund_id: str = ""
    failure_code: str = ""
    failure_message: str = ""


class AdapterError(Exception):
    """Base of adapter errors; carries the provider slug, the status and the error code."""

    def __init__(self, message: str, *, provider: str = "", status: int | None = None, code: str = ""):
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.code = code


class AdapterUnavailable(AdapterError):
    """The provider could not be reached or answer in time (or asked us to come back later).

    Nothing is known about the outcome: the caller keeps the operation pending and
    retries with the same idempotency key.
    """


class PaymentAdapter:
    """What a payment provider must do. Subclasses implement these three methods."""

    def __init__(self, provider):
        self.provider = provider

    def charge_create(self, request: ChargeRequest) -> ChargeResult:
        """Create (or, with a key already used, return) a charge. A decline is a result,
        not an error; unreachable raises AdapterUnavailable."""
        raise NotImplementedError

    def charge_retrieve(self, provider_charge_id: str) -> ChargeResult:
        """The provider's current state of a charge it created."""
        raise NotImplementedError

    def refund_create(self, request: RefundRequest) -> RefundResult:
        """Refund (part of) a charge; unreachable raises AdapterUnavailable."""
        raise NotImplementedError
