"""Stripe: the legacy Charges API with form-encoded bodies (`metadata[key]=value`), bearer secret key.

The outbound client does the nested form encoding; webhooks carry `Stripe-Signature`.
"""

from integrations.adapters.stripe_style import StripeStyleAdapter
from integrations.kinds.base import Kind
from integrations.models import AuthScheme
from webhooks.schemes.stripe import StripeScheme


class StripePayments(StripeStyleAdapter):
    def encode(self, payload: dict) -> dict:
        return {"data": payload}


KIND = Kind(
    name="stripe",
    label="Stripe",
    auth_scheme=AuthScheme.BEARER,
    api_version_header="Stripe-Version",
    webhook_scheme=StripeScheme(),
    adapters={"payments": StripePayments},
)
