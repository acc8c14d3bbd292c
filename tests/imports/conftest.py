"""Fixtures for imports: the real sandbox over HTTP (in a thread, or its own process) and a
sandbox-kind provider pointed at it with the sandbox's API key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from integrations.credentials import credential_rotate
from integrations.models import Provider
from sandbox.api import Sandbox, SandboxConfig
from sandbox.server import SandboxServer

API_KEY = "sk_test_imports_sandbox"


class SandboxControl:
    """The sandbox's /_control/ endpoints, for tests."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()

    def records(self, **body) -> dict:
        """POST /_control/records: `rate_limit={...}|None`, `edit=[numbers]`."""
        response = self.session.post(f"{self.url}/_control/records", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def faults(self, body: dict) -> dict:
        response = self.session.post(f"{self.url}/_control/faults", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def stats(self) -> dict:
        return self.session.get(f"{self.url}/_control/stats", timeout=10).json()


@pytest.fixture
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(Sandbox(SandboxConfig(api_key=API_KEY)), port=0).start()
    yield server
    server.stop()


@pytest.fixture
def control(sandbox_server) -> SandboxControl:
    control = SandboxControl(sandbox_server.url)
    control.records(rate_limit=None)  # lifted unless a test sets one
    return control


def make_records_provider(url: str, **policy) -> Provider:
    """A sandbox-kind provider at `url` whose client-side bucket does not get in the way."""
    fields = {"rate_limit_requests": 1_000_000, "rate_limit_period": 1.0, **policy}
    provider = Provider.objects.create(slug="partner", name="Partner", kind="sandbox", base_url=url, **fields)
    credential_rotate(provider=provider, purpose="api_key", value=API_KEY)
    return provider


@pytest.fixture
def partner(db, sandbox_server) -> Provider:
    return make_records_provider(sandbox_server.url)
