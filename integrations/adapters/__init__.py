"""The adapter interface per capability (payments today): dataclasses in and out, errors.

Adapters themselves live with their kind (integrations/kinds/<kind>.py) and are found
through it: `integrations.kinds.adapter_for(provider, "payments")`.
"""

from integrations.adapters.base import (
    AdapterError,
    AdapterUnavailable,
    ChargeRequest,
    ChargeResult,
    PaymentAdapter,
    RefundRequest,
    RefundResult,
)

__all__ = [
    "AdapterError", "AdapterUnavailable", "ChargeRequest", "ChargeResult", "PaymentAdapter",
    "RefundRequest", "RefundResult",
]
