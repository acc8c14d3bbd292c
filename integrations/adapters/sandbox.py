"""The project's own sandbox provider: Stripe's paths and shapes, JSON bodies."""

from integrations.adapters.http import StripeStyleAdapter
from integrations.adapters.registry import register


@register("sandbox")
class SandboxAdapter(StripeStyleAdapter):
    def encode(self, payload: dict) -> dict:
        return {"json": payload}
