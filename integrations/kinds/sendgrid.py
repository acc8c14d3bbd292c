"""SendGrid: bearer API key; the Event Webhook is ECDSA-signed (the credential is its public key).

The email adapter arrives with the email capability.
"""

from integrations.kinds.base import Kind
from integrations.models import AuthScheme
from webhooks.schemes.sendgrid import SendGridScheme

KIND = Kind(
    name="sendgrid",
    label="SendGrid",
    auth_scheme=AuthScheme.BEARER,
    webhook_scheme=SendGridScheme(),
)
