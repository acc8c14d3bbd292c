"""Read-through cache for GETs marked cacheable."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from integrations.client import ProviderClient
from tests.support.local_server import LocalServer, Reply


def _samples(slug: str, result: str) -> float:
    return REGISTRY.get_sample_value("outbound_cache_total", {"provider": slug, "result": result}) or 0.0


@pytest.fixture
def address_server():
    answers = iter(range(1, 100))
    with LocalServer(lambda r: Reply(200, json={"verified": True, "n": next(answers)})) as server:
        yield server


def test_a_differently_spaced_and_cased_address_hits_the_cache(make_provider, address_server):
    provider = make_provider(address_server.url, cache_ttl=60)
    client = ProviderClient(provider)
    hits, misses = _samples(provider.slug, "hit"), _samples(provider.slug, "miss")

    first = client.request("GET", "/v1/verify", params={"address": "10 Downing Street, London"},
                           cacheable=True, cache_key_parts={"address": "10 Downing Street, London"})
    second = client.request("GET", "/v1/verify", params={"address": "  10   DOWNING street,\tlondon "},
                            cacheable=True, cache_key_parts={"address": "  10   DOWNING street,\tlondon "})

    assert first.data == {"verified": True, "n": 1} and not first.cached
    assert second.data == first.data and second.cached and second.attempts == 0
    assert address_server.count == 1
    assert _samples(provider.slug, "hit") - hits == 1 and _samples(provider.slug, "miss") - misses == 1


def test_the_cache_misses_after_the_ttl(make_provider, address_server):
    provider = make_provider(address_server.url, cache_ttl=1)
    client = ProviderClient(provider)
    params = {"address": "1 Main St"}
    client.request("GET", "/v1/verify", params=params, cacheable=True)
    assert client.request("GET", "/v1/verify", params=params, cacheable=True).cached

    time.sleep(1.1)  # the TTL is the thing under test: real time has to pass

    third = client.request("GET", "/v1/verify", params=params, cacheable=True)
    assert not third.cached and third.data["n"] == 2 and address_server.count == 2


def test_different_requests_and_versions_do_not_share_entries(make_provider, address_server):
    provider = make_provider(address_server.url, cache_ttl=60)
    client = ProviderClient(provider)
    client.request("GET", "/v1/verify", params={"address": "1 Main St"}, cacheable=True)
    client.request("GET", "/v1/verify", params={"address": "2 Main St"}, cacheable=True)
    client.request("GET", "/v1/other", params={"address": "1 Main St"}, cacheable=True)
    provider.api_version = "2025-01-01"
    provider.save()
    ProviderClient(provider).request("GET", "/v1/verify", params={"address": "1 Main St"}, cacheable=True)
    assert address_server.count == 4


def test_uncacheable_calls_errors_and_zero_ttl_are_not_cached(make_provider):
    with LocalServer(script=[Reply(500), Reply(200, json={"n": 1}), Reply(200, json={"n": 2}),
                             Reply(200, json={"n": 3}), Reply(200, json={"n": 4})]) as server:
        provider = make_provider(server.url, cache_ttl=60, max_attempts=1)
        client = ProviderClient(provider)
        assert client.request("GET", "/v1/x", cacheable=True).error_code == "HTTP_500"
        assert client.request("GET", "/v1/x", cacheable=True).data == {"n": 1}
        assert client.request("GET", "/v1/x").data == {"n": 2}  # not marked cacheable: always asks
        assert client.request("GET", "/v1/x", cacheable=True).data == {"n": 1}
        provider.cache_ttl = 0
        provider.save()
        assert ProviderClient(provider).request("GET", "/v1/x", cacheable=True).data == {"n": 3}


def test_cached_answers_keep_no_cookies(make_provider):
    reply = Reply(200, json={"ok": True}, headers={"Set-Cookie": "session=abc", "X-Request-Cost": "1"})
    with LocalServer(lambda r: reply) as server:
        provider = make_provider(server.url, cache_ttl=60)
        client = ProviderClient(provider)
        client.request("GET", "/v1/x", cacheable=True)

        cached = client.request("GET", "/v1/x", cacheable=True)

        assert cached.cached and cached.headers["X-Request-Cost"] == "1"
        assert "Set-Cookie" not in cached.headers
