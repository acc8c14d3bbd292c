"""Mailgun: email through `POST /v3/<domain>/messages` (form-encoded, HTTP basic `api:<key>`);
events are JSON bodies signed with the webhook signing key (webhooks/schemes/mailgun.py).

The provider's base URL carries the region and the sending domain:
`https://api.mailgun.net/v3/<domain>` (US) or `https://api.eu.mailgun.net/v3/<domain>` (EU).
Credentials: `basic_username` = `api`, `basic_password` = the API key, `webhook_secret` =
the webhook signing key. Mailgun does not deduplicate sends: one attempt per `send`.
"""

from __future__ import annotations

from integrations.adapters.email import (
    EmailAdapter,
    EmailEventData,
    EmailMessage,
    SendResult,
    event_time,
)
from integrations.kinds.base import Kind
from integrations.models import AuthScheme
from webhooks.schemes.mailgun import MailgunScheme

# Suppressed before any attempt (the address bounced, unsubscribed or complained before):
# Mailgun reports them as permanent failures; for us they are drops, not bounces.
_SUPPRESSED = {"suppress-bounce", "suppress-unsubscribe", "suppress-complaint"}
_EVENTS = {"accepted": "processed", "delivered": "delivered", "rejected": "dropped",
           "complained": "complained", "opened": "opened", "clicked": "clicked"}


def _normalised_id(value) -> str:
    """Mailgun answers `<id@domain>` and its events carry `id@domain`: compare without brackets."""
    return str(value or "").strip().strip("<>")


class MailgunEmail(EmailAdapter):
    """Sends with Mailgun's Messages API and reads its webhook `event-data`."""

    event_types = frozenset({*_EVENTS, "failed", "unsubscribed", "stored"})

    def payload(self, message: EmailMessage) -> dict:
        """The form fields. Lists are comma-joined (Mailgun's form, not Stripe's `to[0]=`)."""
        fields = {"from": message.from_address, "to": ", ".join(message.to), "subject": message.subject,
                  # Echoed as user-variables on every event of this message.
                  "v:email_id": message.email_id}
        optional = {"cc": ", ".join(message.cc), "bcc": ", ".join(message.bcc), "h:Reply-To": message.reply_to,
                    "text": message.text, "html": message.html}
        fields.update({name: value for name, value in optional.items() if value})
        return fields

    def send(self, message: EmailMessage) -> SendResult:
        result = self._call("/messages", message=message, data=self.payload(message))
        if result.status is not None and 200 <= result.status < 300:
            data = result.data if isinstance(result.data, dict) else {}
            return SendResult(status="sent", provider_message_id=_normalised_id(data.get("id")))
        return self._not_sent(result)

    def refusal(self, result) -> tuple[str, str]:
        """Mailgun's errors: {"message": "..."} (401 answers plain text)."""
        data = result.data if isinstance(result.data, dict) else {}
        text = str(data.get("message") or result.text or f"HTTP {result.status}")
        lowered = text.lower()
        if result.status == 400 and any(f"{name} parameter" in lowered.replace("'", "")
                                        for name in ("to", "cc", "bcc")):
            return "invalid_recipient", text
        if result.status == 400 and "from parameter" in lowered.replace("'", ""):
            return "invalid_sender", text
        return super().refusal(result)[0], text

    def parse_event(self, payload) -> EmailEventData:
        # The stored payload is the whole delivery; an `event-data` object alone is read too.
        data = payload if isinstance(payload, dict) else {}
        event = data.get("event-data") if isinstance(data.get("event-data"), dict) else data
        name = str(event.get("event") or "")
        if name == "failed":
            if event.get("severity") == "temporary":
                type_ = "deferred"
            else:
                type_ = "dropped" if event.get("reason") in _SUPPRESSED else "bounced"
        else:
            type_ = _EVENTS.get(name, "")
        variables = event.get("user-variables") if isinstance(event.get("user-variables"), dict) else {}
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
        return EmailEventData(type=type_, email_id=str(variables.get("email_id") or ""),
                              provider_message_id=_normalised_id(headers.get("message-id")),
                              recipient=str(event.get("recipient") or ""),
                              occurred_at=event_time(event.get("timestamp")))


KIND = Kind(
    name="mailgun",
    label="Mailgun",
    auth_scheme=AuthScheme.BASIC,
    webhook_scheme=MailgunScheme(),
    adapters={"email": MailgunEmail},
)
