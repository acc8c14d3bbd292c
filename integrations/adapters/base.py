"""The payment adapter interface: dataclasses in and out, one small base class per wire format.

An adapter turns a provider-neutral request into one HTTP call through the outbound
client (which owns auth, timeouts, retries, the circuit breaker and rate limits) and the
answer back into a provider-neutral result. A kind offers payments by naming its
`PaymentAdapter` subclass in its module: `Kind(..., adapters={"payments": ...})`.

Adapters raise the client's errors (integrations.errors), not a hierarchy of their own:
`ProviderUnavailable` carrying the call's `CallResult` for "not reached" or "not now", and
`CredentialMissing` as the client raised it.
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


class PaymentAdapter:
    """What a payment provider must do. Subclasses implement these three methods."""

    def __init__(self, provider):
        self.provider = provider

    def charge_create(self, request: ChargeRequest) -> ChargeResult:
        """Create (or, with a key already used, return) a charge. A decline is a result,
        not an error; "not reached" or "not now" raises ProviderUnavailable (with the result)."""
        raise NotImplementedError

    def charge_retrieve(self, provider_charge_id: str) -> ChargeResult:
        """The provider's current state of a charge it created; any failure raises
        ProviderUnavailable (the charge stays as it is until a later try)."""
        raise NotImplementedError

    def refund_create(self, request: RefundRequest) -> RefundResult:
        """Refund (part of) a charge. A definitive refusal is a failed result; "not reached" or
        "not now" raises ProviderUnavailable (with the result)."""
        raise NotImplementedError
