"""GET /api/v1/addresses/verify: the read-through cache, its TTLs and bypass, and the errors."""

from __future__ import annotations

import pytest
import responses

from addresses import services
from addresses.cache import entry_key
from addresses.normalize import normalize_address
from integrations.models import Provider

from .conftest import NOMINATIM_URL, SEVEN_DAYS, nominatim_item

pytestmark = pytest.mark.django_db
DAY = 24 * 3600


def verify(api_client, address, **headers):
    return api_client.get("/api/v1/addresses/verify", {"address": address}, **headers)


def test_a_hit_for_differently_spaced_and_cased_input(api_client, sandbox):
    first = verify(api_client, "10 Downing Street, London")
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["found"] is True and body["cached"] is False
    assert body["normalized"] == "10 downing street, london"
    assert body["result"]["components"]["postcode"] == "SW1A 2AA" and body["result"]["provider"] == "sandbox"
    assert body["result"]["lat"] == pytest.approx(51.5033635)

    again = verify(api_client, "  10   DOWNING street ,London ").json()
    assert again["cached"] is True and again["result"] == body["result"]
    assert again["query"] == "  10   DOWNING street ,London "
    assert sandbox.stats()["by_query"] == {"10 downing street, london": 1}


def test_a_miss_after_the_ttl(sandbox, provider, clock):
    first = services.address_verify(query="7 Test Street, Testville", provider=provider, clock=clock)
    clock.advance(SEVEN_DAYS - 1)
    assert services.address_verify(query="7 test street, testville", provider=provider, clock=clock).cached
    clock.advance(1)
    later = services.address_verify(query="7 Test Street, Testville", provider=provider, clock=clock)
    assert (first.cached, later.cached, later.result) == (False, False, first.result)
    assert sandbox.stats()["by_query"]["7 test street, testville"] == 2


def test_not_found_is_an_answer_kept_one_day(api_client, sandbox, provider, clock):
    response = verify(api_client, "1 Nowhere Lane, Atlantis")
    assert response.status_code == 200
    assert response.json() == {"query": "1 Nowhere Lane, Atlantis", "normalized": "1 nowhere lane, atlantis",
                               "found": False, "result": None, "cached": False}
    assert verify(api_client, "1 nowhere lane, atlantis").json()["cached"] is True

    stored = services.address_verify(query="2 Nowhere Lane", provider=provider, clock=clock)
    clock.advance(DAY - 1)
    assert services.address_verify(query="2 Nowhere Lane", provider=provider, clock=clock).cached
    clock.advance(1)
    assert not services.address_verify(query="2 Nowhere Lane", provider=provider, clock=clock).cached
    assert stored.found is False and sandbox.stats()["by_query"]["2 nowhere lane"] == 2


def test_cache_control_no_cache_bypasses_and_refreshes(api_client, sandbox):
    assert verify(api_client, "3 Test Street, Testville").json()["cached"] is False
    refreshed = verify(api_client, "3 Test Street, Testville", HTTP_CACHE_CONTROL="no-cache")
    assert refreshed.json()["cached"] is False
    assert verify(api_client, "3 Test Street, Testville").json()["cached"] is True
    assert sandbox.stats()["by_query"]["3 test street, testville"] == 2


def test_the_key_holds_the_provider_and_its_api_version(provider, nominatim):
    key = entry_key(provider=provider, normalized="x")
    assert key != entry_key(provider=nominatim, normalized="x")
    provider.api_version = "2026-01-01"
    assert key != entry_key(provider=provider, normalized="x")


def test_provider_down_is_a_503_in_the_contract_shape(api_client, sandbox):
    sandbox.faults({"faults": [{"action": "error", "status": 503, "count": 5, "path": "/search"}]})
    response = verify(api_client, "4 Test Street, Testville")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "provider_unavailable"
    assert set(response.json()["error"]) >= {"type", "message"}
    assert response["Retry-After"]


def test_provider_unreachable_is_a_503(api_client, provider):
    Provider.objects.filter(pk=provider.pk).update(base_url="http://127.0.0.1:9", max_attempts=1)
    response = verify(api_client, "5 Test Street, Testville")
    assert response.status_code == 503 and response.json()["error"]["type"] == "provider_unavailable"


@pytest.mark.parametrize("address", ["", "   ", " , ,", "x" * 501])
def test_empty_blank_or_too_long_is_a_400(api_client, provider, address):
    response = verify(api_client, address)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert response.json()["error"]["param"] == "address"


def test_a_missing_address_or_unknown_provider_is_a_400(api_client, provider):
    assert api_client.get("/api/v1/addresses/verify").status_code == 400
    unknown = api_client.get("/api/v1/addresses/verify", {"address": "x", "provider": "nope"})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "provider"


def test_exactly_500_characters_are_accepted(api_client, sandbox):
    assert verify(api_client, "a" * 500).json()["found"] is False


def test_a_key_is_required(client, provider):
    assert client.get("/api/v1/addresses/verify", {"address": "x"}).status_code == 401


@responses.activate
def test_through_a_nominatim_provider(api_client, nominatim):
    responses.get(f"{NOMINATIM_URL}/search", json=[nominatim_item()])
    response = api_client.get("/api/v1/addresses/verify", {"address": "10 Downing St", "provider": "osm"})
    assert response.json()["result"]["provider"] == "osm"
    assert normalize_address("10 Downing St") == response.json()["normalized"]


def test_hits_and_misses_are_counted(api_client, sandbox):
    from addresses.metrics import cache_total

    def count(result):
        return cache_total.labels("sandbox", result)._value.get()

    hits, misses = count("hit"), count("miss")
    verify(api_client, "8 Test Street, Testville")
    verify(api_client, "8 test street, testville")
    assert (count("hit") - hits, count("miss") - misses) == (1, 1)


def test_the_endpoints_are_in_the_openapi_schema(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/addresses/verify", "/api/v1/addresses/verify-batch",
                 "/api/v1/addresses/verify-batch/{job_id}/results"):
        assert path in text
