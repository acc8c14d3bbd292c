"""Fixtures for the outbound client: providers pointed at local servers, injected sleeps."""

from __future__ import annotations

import random

import pytest

from integrations.client import ProviderClient
from integrations.credentials import credential_rotate
from integrations.models import Provider

SECRET = "sk_live_KNOWN_SECRET_VALUE_42"


class FakeSleep:
    """Records the waits the client asks for instead of sleeping."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def make_provider(db):
    """make_provider(url, **policy): a provider at `url` with a known API key."""
    counter = iter(range(1000))

    def make(url: str, *, slug: str | None = None, secret: str = SECRET, **policy) -> Provider:
        fields = {"connect_timeout": 0.5, "read_timeout": 0.5, "deadline": 5.0, "max_attempts": 3,
                  "backoff_base": 0.01, "backoff_max": 0.05, **policy}
        provider = Provider.objects.create(slug=slug or f"p{next(counter)}", name="Test provider",
                                           kind="sandbox", base_url=url, **fields)
        credential_rotate(provider=provider, purpose="api_key", value=secret)
        return provider

    return make


@pytest.fixture
def make_client(fake_sleep):
    """make_client(provider): a client that records its sleeps and uses a seeded random source."""

    def make(provider: Provider, **kwargs) -> ProviderClient:
        kwargs.setdefault("sleep", fake_sleep)
        kwargs.setdefault("rng", random.Random(7))
        return ProviderClient(provider, **kwargs)

    return make


def age_circuit(provider: Provider, seconds: float) -> None:
    """Move an open circuit's opening `seconds` into the past (as if that time had passed)."""
    from integrations import shared_state

    def older(current):
        return {**current, "opened_at": current["opened_at"] - seconds}, None

    shared_state.store().update(f"circuit:{provider.slug}", older, ttl=3600)



@pytest.fixture(params=["configured", "database"])
def shared_store(request, settings):
    """Runs a concurrency test with the store the settings pick (Redis in the PostgreSQL
    stage) and again with the database store, so both are proven under real concurrency."""
    if request.param == "database":
        settings.INTEGRATIONS_SHARED_STATE = "database"
    return request.param
