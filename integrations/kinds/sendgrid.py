"""SendGrid: email through v3 `POST /v3/mail/send` with a bearer API key; the Event Webhook is
ECDSA-signed (the credential is its public key).

SendGrid does not deduplicate sends: one attempt per `send`, never retried by the client
(see integrations/adapters/email.py). The sandbox kind speaks the same wire format and
subclasses `SendGridEmail`.
"""

from __future__ import annotations

from email.utils import parseaddr

from integrations.adapters.email import (
    EmailAdapter,
    EmailEventData,
    EmailMessage,
    SendResult,
    event_time,
)
from integrations.kinds.base import Kind
from integrations.models import AuthScheme
from webhooks.schemes.sendgrid import SendGridScheme

# SendGrid's event names -> ours (integrations.adapters.email.EVENT_TYPES); the rest
# (unsubscribes, group changes) are recorded by nobody: type "".
SENDGRID_EVENTS = {
    "processed": "processed", "delivered": "delivered", "deferred": "deferred", "bounce": "bounced",
    "dropped": "dropped", "spamreport": "complained", "open": "opened", "click": "clicked",
}
# Error fields of a 400 that name a recipient (personalizations.0.to.0.email, ...) or the sender.
_RECIPIENT_FIELDS = ("personalizations",)
_SENDER_FIELDS = ("from", "reply_to")


def _address(value: str) -> dict:
    """`Name <a@b>` or `a@b` as SendGrid's {"email", "name"} object."""
    name, email = parseaddr(value)
    return {"email": email or value, **({"name": name} if name else {})}


class SendGridEmail(EmailAdapter):
    """Sends with SendGrid's v3 Mail Send JSON and reads its Event Webhook items."""

    path = "/v3/mail/send"
    event_types = frozenset({*SENDGRID_EVENTS, "unsubscribe", "group_unsubscribe", "group_resubscribe"})

    def payload(self, message: EmailMessage) -> dict:
        """The Mail Send body: one personalization (SendGrid refuses empty cc/bcc lists)."""
        personalization = {"to": [_address(a) for a in message.to]}
        if message.cc:
            personalization["cc"] = [_address(a) for a in message.cc]
        if message.bcc:
            personalization["bcc"] = [_address(a) for a in message.bcc]
        # text/plain must come first when both are given.
        content = [{"type": kind, "value": value}
                   for kind, value in (("text/plain", message.text), ("text/html", message.html)) if value]
        body = {"personalizations": [personalization], "from": _address(message.from_address),
                "subject": message.subject, "content": content,
                # Echoed on every event of this message: how events find the email.
                "custom_args": {"email_id": message.email_id}}
        if message.reply_to:
            body["reply_to"] = _address(message.reply_to)
        return body

    def send(self, message: EmailMessage) -> SendResult:
        result = self._call(self.path, message=message, json=self.payload(message))
        if result.status is not None and 200 <= result.status < 300:
            data = result.data if isinstance(result.data, dict) else {}
            # SendGrid answers 202 with no body; the sandbox also echoes the id in the body,
            # because its idempotent replays keep bodies, not headers.
            message_id = result.headers.get("X-Message-Id") or str(data.get("message_id") or "")
            return SendResult(status="sent", provider_message_id=message_id)
        return self._not_sent(result)

    def refusal(self, result) -> tuple[str, str]:
        """SendGrid's errors: {"errors": [{"message", "field", "help"}]}."""
        data = result.data if isinstance(result.data, dict) else {}
        errors = [e for e in data.get("errors") or [] if isinstance(e, dict)]
        text = "; ".join(str(e.get("message") or "") for e in errors) or f"HTTP {result.status}"
        fields = [str(e.get("field") or "") for e in errors]
        if result.status == 400 and any(f.startswith(_RECIPIENT_FIELDS) for f in fields):
            return "invalid_recipient", text
        if result.status == 400 and any(f.startswith(_SENDER_FIELDS) for f in fields):
            return "invalid_sender", text
        return super().refusal(result)[0], text

    def parse_event(self, payload) -> EmailEventData:
        item = payload if isinstance(payload, dict) else {}
        # sg_message_id is the X-Message-Id answered at send time plus ".<filter id>...".
        message_id = str(item.get("sg_message_id") or "").split(".", 1)[0]
        return EmailEventData(type=SENDGRID_EVENTS.get(str(item.get("event") or ""), ""),
                              email_id=str(item.get("email_id") or ""), provider_message_id=message_id,
                              recipient=str(item.get("email") or ""), occurred_at=event_time(item.get("timestamp")))


KIND = Kind(
    name="sendgrid",
    label="SendGrid",
    auth_scheme=AuthScheme.BEARER,
    webhook_scheme=SendGridScheme(),
    adapters={"email": SendGridEmail},
)
