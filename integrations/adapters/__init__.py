"""The adapter interface per capability (payments today): dataclasses in and out.

Adapters themselves live with their kind (integrations/kinds/<kind>.py) and are found
through it: `integrations.kinds.adapter_for(provider, "payments")`. Their errors are the
client's (integrations.errors): there is no adapter error hierarchy.
"""

from integrations.adapters.base import (
    ChargeRequest,
    ChargeResult,
    PaymentAdapter,
    RefundRequest,
    RefundResult,
)

__all__ = ["ChargeRequest", "ChargeResult", "PaymentAdapter", "RefundRequest", "RefundResult"]
