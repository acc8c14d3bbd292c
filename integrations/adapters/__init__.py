"""Payment adapters: one module per provider kind behind the interface in base.py."""

from integrations.adapters.base import (
    AdapterError,
    AdapterUnavailable,
    ChargeRequest,
    ChargeResult,
    PaymentAdapter,
    RefundRequest,
    RefundResult,
)
from integrations.adapters.registry import adapter_for, payment_kinds, register

__all__ = [
    "AdapterError", "AdapterUnavailable", "ChargeRequest", "ChargeResult", "PaymentAdapter",
    "RefundRequest", "RefundResult", "adapter_for", "payment_kinds", "register",
]
