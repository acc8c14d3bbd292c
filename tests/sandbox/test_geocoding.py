"""The sandbox's geocoding capability: Nominatim's /search with deterministic answers, faults, counts."""

from __future__ import annotations

import time

import pytest

from sandbox.capabilities.geocoding import lookup

SEARCH = {"format": "jsonv2", "addressdetails": "1", "limit": "1"}


def search(client, q, **headers):
    return client.get("/search", params={**SEARCH, "q": q}, headers=headers)


def test_a_gazetteer_address_answers_one_jsonv2_item(client):
    response = search(client, "10 Downing Street, London")
    assert response.status_code == 200
    [item] = response.json()
    assert item["lat"] == "51.5033635" and item["lon"] == "-0.1276248"  # strings, as Nominatim sends them
    assert item["address"]["postcode"] == "SW1A 2AA" and item["display_name"].startswith("10, Downing Street")
    assert set(item) >= {"place_id", "licence", "osm_type", "osm_id", "boundingbox", "importance", "addresstype"}


def test_generated_addresses_are_deterministic_whatever_the_spelling(client):
    first = search(client, "42 Test Street, Testville").json()
    assert first == search(client, "  42 TEST street ,, testville ").json()
    assert first[0]["address"]["house_number"] == "42"
    assert lookup("43 Test Street, Testville")["lat"] != first[0]["lat"]


@pytest.mark.parametrize("q", ["1 Nowhere Road", "0 Test Street, Testville", "123456 Test Street, Testville"])
def test_unknown_addresses_are_an_empty_list(client, q):
    assert search(client, q).json() == []


def test_addressdetails_0_leaves_the_address_out(client):
    [item] = client.get("/search", params={"q": "10 Downing Street, London", "format": "jsonv2"}).json()
    assert "address" not in item


def test_bad_searches_are_400s_and_a_key_is_required(client):
    assert client.get("/search", params={"format": "jsonv2"}).status_code == 400
    assert client.get("/search", params={"q": "x", "format": "xml"}).status_code == 400
    client.session.headers.pop("Authorization")
    assert search(client, "x").status_code == 401


def test_requests_are_counted_per_normalised_query_and_reset(client):
    search(client, "7 Test Street, Testville")
    search(client, "7 test street testville".replace("street", "street,"))
    search(client, "nowhere")
    stats = client.stats()["geocoding"]
    assert stats["total"] == 3 and stats["by_query"]["7 test street, testville"] == 2
    assert len(stats["times"]) == 3 and stats["times"] == sorted(stats["times"])
    client.post("/_control/reset")
    assert client.stats()["geocoding"] == {"total": 0, "by_query": {}, "times": []}


def test_fault_injection_by_plan_and_by_header(client):
    client.faults({"faults": [{"action": "error", "status": 502, "path": "/search"},
                              {"action": "rate_limited", "retry_after": 3, "path": "/search"}]})
    assert search(client, "x").status_code == 502
    limited = search(client, "x")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert search(client, "x", **{"X-Sandbox-Fault": "status=503"}).status_code == 503
    assert search(client, "x").status_code == 200
    assert client.stats()["geocoding"]["total"] == 1  # faulted requests never reached the gazetteer


def test_latency_injection(client):
    started = time.monotonic()
    assert search(client, "x", **{"X-Sandbox-Fault": "delay_ms=200"}).status_code == 200
    assert time.monotonic() - started >= 0.2
