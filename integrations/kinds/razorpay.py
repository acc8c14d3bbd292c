"""Razorpay."""

from integrations.kinds.base import Kind

KIND = Kind(name="razorpay", label="Razorpay", capabilities=frozenset())
