"""Fixtures of the addresses tests: a geocoding provider on a real sandbox (HTTP, a thread
of the test process) or on `responses` (Nominatim's wire format), and an injectable clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from integrations.models import Provider
from sandbox.api import Sandbox, SandboxConfig
from sandbox.server import SandboxServer

NOMINATIM_URL = "https://nominatim.test"
SEVEN_DAYS = 7 * 24 * 3600


class Clock:
    """Wall seconds that only move when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


class SandboxHandle:
    """The running sandbox and its control endpoints."""

    def __init__(self, server: SandboxServer):
        self.server = server
        self.url = server.url

    def stats(self) -> dict:
        return requests.get(f"{self.url}/_control/stats", timeout=5).json()["geocoding"]

    def faults(self, body: dict) -> None:
        response = requests.post(f"{self.url}/_control/faults", json=body, timeout=5)
        assert response.status_code == 200, response.text

    def reset(self) -> None:
        requests.post(f"{self.url}/_control/reset", timeout=5)


@pytest.fixture
def sandbox(provider) -> Iterator[SandboxHandle]:
    """The sandbox serving geocoding to the `provider` fixture (kind sandbox, same API key);
    fast policy for tests: no client-side rate limit to speak of, a short deadline."""
    server = SandboxServer(Sandbox(SandboxConfig(api_key="sk_test_provider_secret_123")), port=0).start()
    Provider.objects.filter(pk=provider.pk).update(
        base_url=server.url, cache_ttl=SEVEN_DAYS, rate_limit_requests=10_000, max_attempts=2,
        backoff_base=0.01, backoff_max=0.02, read_timeout=2.0, connect_timeout=1.0, deadline=5.0)
    provider.refresh_from_db()
    yield SandboxHandle(server)
    server.stop()


@pytest.fixture
def nominatim(db) -> Provider:
    """A nominatim provider as docs/addresses.md configures one (1 request/s, 7 days), with a
    quick retry policy; its HTTP is faked with `responses`."""
    return Provider.objects.create(slug="osm", name="OSM", kind="nominatim", base_url=NOMINATIM_URL,
                                   rate_limit_requests=1, rate_limit_period=1.0, cache_ttl=SEVEN_DAYS,
                                   backoff_base=0.01, backoff_max=0.02, max_attempts=3)


def nominatim_item(**overrides) -> dict:
    """One item of Nominatim's jsonv2 search answer (abridged from a real one)."""
    item = {
        "place_id": 240109189, "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
        "osm_type": "way", "osm_id": 1879842, "lat": "51.5033635", "lon": "-0.1276248", "category": "building",
        "type": "government", "place_rank": 30, "importance": 0.6, "addresstype": "building",
        "name": "Prime Minister's Office",
        "display_name": "Prime Minister's Office, 10, Downing Street, Westminster, London, SW1A 2AA, United Kingdom",
        "address": {"house_number": "10", "road": "Downing Street", "city": "London", "postcode": "SW1A 2AA",
                    "country": "United Kingdom", "country_code": "gb"},
        "boundingbox": ["51.5032", "51.5035", "-0.1278", "-0.1274"],
    }
    item.update(overrides)
    return item
