"""The project's own sandbox provider: Stripe's paths and shapes with JSON bodies, Standard Webhooks.

Email is SendGrid's wire format plus `Idempotency-Key` (the sandbox deduplicates sends), and
its events are Standard Webhooks `email.<type>` events whose `data.object` names the email.
"""

from imports.adapters import CursorRecordsAdapter
from integrations.adapters.email import EMAIL_EVENT_PREFIX, EVENT_TYPES, EmailEventData, event_time
from integrations.adapters.stripe_style import StripeStyleAdapter
from integrations.kinds.base import Kind
from integrations.kinds.nominatim import NominatimGeocoding
from integrations.kinds.sendgrid import SendGridEmail
from integrations.models import AuthScheme
from webhooks.schemes.standard import StandardScheme


class SandboxPayments(StripeStyleAdapter):
    def encode(self, payload: dict) -> dict:
        return {"json": payload}


class SandboxEmail(SendGridEmail):
    """SendGrid's Mail Send at the sandbox, deduplicated by Idempotency-Key: the client sends
    the email's key on every attempt and may retry, as for charges."""

    deduplicates = True
    event_types = frozenset(EMAIL_EVENT_PREFIX + t for t in EVENT_TYPES)

    def refusal(self, result) -> tuple[str, str]:
        # The sandbox's own errors (a key reused with another body, ...) have Stripe's shape.
        data = result.data if isinstance(result.data, dict) else {}
        error = data.get("error") if isinstance(data.get("error"), dict) else None
        if error is None:
            return super().refusal(result)
        return str(error.get("code") or "invalid_request"), str(error.get("message") or f"HTTP {result.status}")

    def parse_event(self, payload) -> EmailEventData:
        event = payload if isinstance(payload, dict) else {}
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        obj = data.get("object") if isinstance(data.get("object"), dict) else {}
        type_ = str(event.get("type") or "").removeprefix(EMAIL_EVENT_PREFIX)
        return EmailEventData(type=type_ if type_ in EVENT_TYPES else "", email_id=str(obj.get("email_id") or ""),
                              provider_message_id=str(obj.get("sg_message_id") or "").split(".", 1)[0],
                              recipient=str(obj.get("recipient") or ""), occurred_at=event_time(obj.get("timestamp")))


KIND = Kind(
    name="sandbox",
    label="Sandbox (local Stripe-like provider)",
    auth_scheme=AuthScheme.BEARER,
    api_version_header="Stripe-Version",  # it mimics Stripe, header included
    webhook_scheme=StandardScheme(),
    adapters={"payments": SandboxPayments, "geocoding": NominatimGeocoding, "email": SandboxEmail,
              "records": CursorRecordsAdapter},
)
