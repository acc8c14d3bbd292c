"""Sandbox (local Stripe-like provider)."""

from integrations.kinds.base import Kind

KIND = Kind(name="sandbox", label="Sandbox (local Stripe-like provider)", capabilities=frozenset({"payments"}))
