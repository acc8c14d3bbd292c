"""A generic Standard Webhooks sender (standardwebhooks.com): webhooks only, generic auth defaults."""

from integrations.kinds.base import Kind
from webhooks.schemes.standard import StandardScheme

KIND = Kind(
    name="standard",
    label="Standard Webhooks sender",
    webhook_scheme=StandardScheme(),
)
