"""Stripe's legacy Charges API: form-encoded bodies (`metadata[key]=value`), bearer secret key.

The outbound client does the nested form encoding and the bearer auth for kind `stripe`.
"""

from integrations.adapters.http import StripeStyleAdapter
from integrations.adapters.registry import register


@register("stripe")
class StripeAdapter(StripeStyleAdapter):
    def encode(self, payload: dict) -> dict:
        return {"data": payload}
