"""Stripe."""

from integrations.kinds.base import Kind

KIND = Kind(name="stripe", label="Stripe", capabilities=frozenset({"payments"}))
