"""Fixtures for the email adapters: one provider per email kind, a message, and a real sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.adapters.email import EmailMessage
from integrations.credentials import credential_rotate
from integrations.models import Provider
from sandbox.api import Sandbox, SandboxConfig
from sandbox.server import SandboxServer

SENDGRID_URL = "https://api.sendgrid.test"
# The Mailgun base URL carries the region and the sending domain (docs/providers.md).
MAILGUN_URL = "https://api.eu.mailgun.test/v3/mg.example.com"
SANDBOX_KEY = "sk_test_email_sandbox"
MAILGUN_SIGNING_KEY = "key-mailgun-webhook-signing-0123456789"
# Fast policies: a retry waits milliseconds.
POLICY = {"connect_timeout": 0.5, "read_timeout": 0.5, "deadline": 5.0, "max_attempts": 3,
          "backoff_base": 0.01, "backoff_max": 0.02}


def message(**changes) -> EmailMessage:
    fields = {"email_id": "em_123", "idempotency_key": "email-em_123", "from_address": "Shop <shop@example.com>",
              "to": ("ada@example.com",), "subject": "Your order", "text": "Thanks!", "html": "<p>Thanks!</p>"}
    return EmailMessage(**{**fields, **changes})


def _provider(kind: str, url: str, **policy) -> Provider:
    return Provider.objects.create(slug=f"{kind}-mail", name=kind, kind=kind, base_url=url, **{**POLICY, **policy})


@pytest.fixture
def make_sendgrid(db):
    def make(url: str = SENDGRID_URL, **policy) -> Provider:
        provider = _provider("sendgrid", url, **policy)
        credential_rotate(provider=provider, purpose="api_key", value="SG.test-key")
        return provider

    return make


@pytest.fixture
def sendgrid(make_sendgrid) -> Provider:
    return make_sendgrid()


@pytest.fixture
def mailgun(db) -> Provider:
    provider = _provider("mailgun", MAILGUN_URL)
    credential_rotate(provider=provider, purpose="basic_username", value="api")
    credential_rotate(provider=provider, purpose="basic_password", value="mailgun-api-key-123")
    credential_rotate(provider=provider, purpose="webhook_secret", value=MAILGUN_SIGNING_KEY)
    return provider


@pytest.fixture
def sandbox_server() -> Iterator[SandboxServer]:
    """A running sandbox (no webhook URL: its events go nowhere)."""
    server = SandboxServer(Sandbox(SandboxConfig(api_key=SANDBOX_KEY)), port=0).start()
    yield server
    server.stop()


@pytest.fixture
def at_sandbox(db, sandbox_server):
    """at_sandbox(kind): a provider of `kind` (sandbox or sendgrid) pointed at the sandbox."""

    def make(kind: str = "sandbox", **policy) -> Provider:
        provider = _provider(kind, sandbox_server.url, **policy)
        credential_rotate(provider=provider, purpose="api_key", value=SANDBOX_KEY)
        return provider

    return make
