"""Generic HMAC, GitHub-style: `X-Hub-Signature-256` on webhooks, and on our requests when its
providers use the HMAC auth scheme."""

from integrations.kinds.base import Kind
from webhooks.schemes.github import GitHubScheme

KIND = Kind(
    name="github",
    label="Generic HMAC (GitHub-style)",
    hmac_headers=("X-Hub-Signature-256", "X-Hub-Timestamp"),
    webhook_scheme=GitHubScheme(),
)
