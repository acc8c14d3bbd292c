"""Cursors of the charge list: the ones this API issues work; any other string is a 400
naming `cursor`, never a 500 (PostgreSQL refuses to compare a non-timestamp with `created`)."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.models import Consumer
from payments.models import Charge

pytestmark = pytest.mark.django_db


def cursor(**tokens) -> str:
    return base64.b64encode(urlencode(tokens).encode()).decode()


@pytest.fixture
def charges(api_client, provider):
    consumer = Consumer.objects.get(name="shop")
    return [Charge.objects.create(consumer=consumer, provider=provider, amount=100 + i, currency="usd",
                                  source="tok_visa", outbound_idempotency_key=uuid.uuid4().hex)
            for i in range(3)]


def assert_bad_cursor(response):
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["type"] == "invalid_request"
    assert response.json()["error"]["param"] == "cursor"


@pytest.mark.parametrize("value", [
    pytest.param("cD14", id="position-not-a-datetime"),  # base64 of "p=x"
    pytest.param(cursor(p="2024-01-01"), id="position-a-date"),
    pytest.param(cursor(p="2024-01-01 00:00:00"), id="position-naive"),
    pytest.param(cursor(p="2024-13-01 00:00:00+00:00"), id="position-month-13"),
    pytest.param(cursor(p="0001-01-01 00:00:00+14:00"), id="position-before-year-1-in-utc"),
    pytest.param(cursor(p="9999-12-31 23:00:00-05:00"), id="position-after-year-9999-in-utc"),
    pytest.param(cursor(p="2024-01-01 00:00:00+00:00\x00"), id="position-nul"),
    pytest.param(cursor(r="2"), id="reverse-not-0-or-1"),
    pytest.param(cursor(r="x"), id="reverse-not-a-number"),
    pytest.param(cursor(o="1001"), id="offset-past-the-cutoff"),
    pytest.param(cursor(o="-1"), id="offset-negative"),
    pytest.param(cursor(o="\u0663"), id="offset-non-ascii-digit"),
    pytest.param(cursor(o="9" * 5000), id="offset-huge"),
    pytest.param(cursor(x="1"), id="unknown-field"),
    pytest.param(base64.b64encode(b"p=a&p=b").decode(), id="repeated-field"),
    pytest.param(base64.b64encode(b"garbage").decode(), id="not-a-query-string"),
    pytest.param(base64.b64encode(b"p=\xff").decode(), id="not-ascii"),
    pytest.param("cD0", id="bad-padding"),
    pytest.param("\u00e9", id="non-ascii-cursor"),
    pytest.param("garbage!", id="not-base64"),
])
def test_a_cursor_this_api_did_not_issue_is_a_400(api_client, charges, value):
    assert_bad_cursor(api_client.get("/api/v1/charges", {"cursor": value}))


def test_issued_cursors_walk_both_ways(api_client, charges):
    first = api_client.get("/api/v1/charges", {"limit": 1}).json()
    second = api_client.get(first["next"]).json()
    back = api_client.get(second["previous"]).json()
    assert [c["id"] for c in back["results"]] == [c["id"] for c in first["results"]]
    assert second["results"][0]["id"] == charges[1].id


def test_a_hand_made_cursor_with_a_real_position_works(api_client, charges):
    response = api_client.get("/api/v1/charges", {"cursor": cursor(p=str(charges[2].created))})
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [charges[1].id, charges[0].id]


positions = st.one_of(st.text(), st.datetimes(timezones=st.timezones()).map(str), st.datetimes().map(str))
forged = st.fixed_dictionaries({}, optional={"o": st.one_of(st.text(), st.integers().map(str)),
                                             "r": st.one_of(st.text(), st.integers().map(str)),
                                             "p": positions}).map(lambda t: cursor(**t))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(), forged))
@example(value="cD14")
def test_any_cursor_string_is_a_200_or_a_400(api_client, charges, value):
    response = api_client.get("/api/v1/charges", {"cursor": value})
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        assert_bad_cursor(response)
