"""The project's own sandbox provider: Stripe's paths and shapes with JSON bodies, Standard Webhooks."""

from integrations.adapters.stripe_style import StripeStyleAdapter
from integrations.kinds.base import Kind
from integrations.models import AuthScheme
from webhooks.schemes.standard import StandardScheme


class SandboxPayments(StripeStyleAdapter):
    def encode(self, payload: dict) -> dict:
        return {"json": payload}


KIND = Kind(
    name="sandbox",
    label="Sandbox (local Stripe-like provider)",
    auth_scheme=AuthScheme.BEARER,
    api_version_header="Stripe-Version",  # it mimics Stripe, header included
    webhook_scheme=StandardScheme(),
    adapters={"payments": SandboxPayments},
)
