"""The nominatim kind's geocoding adapter against Nominatim's wire format (faked with `responses`)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.test import override_settings

from integrations.errors import ProviderBadResponse, ProviderUnavailable
from integrations.kinds import adapter_for, get_kind, kinds_with

from .conftest import NOMINATIM_URL, nominatim_item

pytestmark = pytest.mark.django_db
SEARCH = f"{NOMINATIM_URL}/search"


def test_the_kind_offers_geocoding_without_credentials():
    kind = get_kind("nominatim")
    assert kind.auth_scheme == "none" and {"nominatim", "sandbox"} <= kinds_with("geocoding")


@responses.activate
@override_settings(ADDRESSES_USER_AGENT="acme-shop/2.1 (ops@acme.test)")
def test_search_sends_the_documented_query_and_a_descriptive_user_agent(nominatim):
    responses.get(SEARCH, json=[nominatim_item()])
    place = adapter_for(nominatim, "geocoding").search("10 downing street, london")
    request = responses.calls[0].request
    assert parse_qs(urlsplit(request.url).query) == {
        "format": ["jsonv2"], "addressdetails": ["1"], "limit": ["1"], "q": ["10 downing street, london"]}
    assert request.headers["User-Agent"] == "acme-shop/2.1 (ops@acme.test)"
    assert "Authorization" not in request.headers
    assert place.lat == pytest.approx(51.5033635) and place.lon == pytest.approx(-0.1276248)
    assert place.components["postcode"] == "SW1A 2AA" and place.provider == "osm"
    assert place.formatted.startswith("Prime Minister's Office, 10, Downing Street")


@responses.activate
def test_an_empty_list_is_not_found(nominatim):
    responses.get(SEARCH, json=[])
    assert adapter_for(nominatim, "geocoding").search("nowhere") is None


@responses.activate
def test_5xx_is_retried_and_then_answered(nominatim):
    responses.get(SEARCH, status=503)
    responses.get(SEARCH, json=[nominatim_item()])
    nominatim.rate_limit_requests = 100  # the retry need not wait a second for its token
    nominatim.save()
    assert adapter_for(nominatim, "geocoding").search("10 downing street").lat == pytest.approx(51.5033635)
    assert len(responses.calls) == 2


@responses.activate
def test_a_4xx_is_not_retried_and_is_unavailable(nominatim):
    responses.get(SEARCH, status=400, json={"error": "bad"})
    with pytest.raises(ProviderUnavailable) as err:
        adapter_for(nominatim, "geocoding").search("x")
    assert err.value.result.error_code == "HTTP_400" and len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize("body", [{"not": "a list"}, [{"display_name": "x", "lat": "north"}]])
def test_an_unreadable_answer_is_a_bad_response(nominatim, body):
    responses.get(SEARCH, json=body)
    with pytest.raises(ProviderBadResponse):
        adapter_for(nominatim, "geocoding").search("x")
