"""Retries, backoff, Retry-After and standardised results (provider answers from `responses`)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses

from integrations.client import (
    CallResult,
    ProviderBadResponse,
    ProviderRejected,
    ProviderUnavailable,
    backoff_delay,
    form_encode,
    parse_retry_after,
)

BASE = "https://provider.test"


@pytest.fixture
def provider(make_provider):
    return make_provider(BASE)


@pytest.mark.parametrize("status", [500, 502, 503, 408])
@responses.activate
def test_transient_status_is_retried_until_success(provider, make_client, fake_sleep, status):
    responses.get(f"{BASE}/v1/thing", status=status, json={"error": "busy"})
    responses.get(f"{BASE}/v1/thing", status=200, json={"id": "t_1"})

    result = make_client(provider).request("GET", "/v1/thing")

    assert result.ok and result.status == 200 and result.data == {"id": "t_1"}
    assert result.attempts == 2
    assert len(responses.calls) == 2
    assert len(fake_sleep.calls) == 1


@responses.activate
def test_read_timeout_then_success_is_retried(provider, make_client):
    responses.get(f"{BASE}/v1/thing", body=requests.exceptions.ReadTimeout("slow"))
    responses.get(f"{BASE}/v1/thing", body=requests.exceptions.ConnectionError("reset"))
    responses.get(f"{BASE}/v1/thing", json={"id": "t_1"})

    result = make_client(provider).request("GET", "/v1/thing")

    assert result.ok and result.attempts == 3


@responses.activate
def test_attempts_are_capped_and_the_last_error_is_reported(provider, make_client, fake_sleep):
    responses.get(f"{BASE}/v1/thing", status=503, json={"error": {"message": "down"}})

    result = make_client(provider).request("GET", "/v1/thing")

    assert not result.ok
    assert result.error_code == "HTTP_503" and result.status == 503
    assert result.data == {"error": {"message": "down"}}
    assert result.attempts == provider.max_attempts == len(responses.calls)
    assert len(fake_sleep.calls) == provider.max_attempts - 1
    with pytest.raises(ProviderUnavailable) as err:
        result.raise_for_error()
    assert err.value.result is result


@pytest.mark.parametrize("status", [400, 401, 404, 422])
@responses.activate
def test_business_4xx_is_never_retried_and_keeps_its_body(provider, make_client, fake_sleep, status):
    responses.post(f"{BASE}/v1/charges", status=status, json={"error": {"code": "card_declined"}})

    result = make_client(provider).request("POST", "/v1/charges", data={"amount": 100}, idempotency_key="k1")

    assert result.error_code == f"HTTP_{status}" and result.attempts == 1
    assert result.data == {"error": {"code": "card_declined"}}
    assert len(responses.calls) == 1 and fake_sleep.calls == []
    with pytest.raises(ProviderRejected):
        result.raise_for_error()


@responses.activate
def test_post_without_idempotency_key_is_not_retried_after_a_read_timeout(provider, make_client):
    responses.post(f"{BASE}/v1/charges", body=requests.exceptions.ReadTimeout("slow"))
    responses.post(f"{BASE}/v1/charges", json={"id": "ch_1"})

    result = make_client(provider).request("POST", "/v1/charges", json={"amount": 100})

    assert result.error_code == "ETIMEDOUT" and result.attempts == 1
    assert len(responses.calls) == 1


@responses.activate
def test_patch_without_idempotency_key_is_not_retried_on_503(provider, make_client):
    responses.patch(f"{BASE}/v1/charges/ch_1", status=503)

    result = make_client(provider).request("PATCH", "/v1/charges/ch_1", json={"description": "x"})

    assert result.error_code == "HTTP_503" and len(responses.calls) == 1


@responses.activate
def test_post_with_idempotency_key_is_retried_with_the_same_key_every_time(provider, make_client):
    responses.post(f"{BASE}/v1/charges", body=requests.exceptions.ReadTimeout("slow"))
    responses.post(f"{BASE}/v1/charges", status=502)
    responses.post(f"{BASE}/v1/charges", json={"id": "ch_1"})

    result = make_client(provider).request("POST", "/v1/charges", data={"amount": 100, "metadata": {"order": 7}},
                                           idempotency_key="idem-123")

    assert result.ok and result.attempts == 3
    keys = [call.request.headers["Idempotency-Key"] for call in responses.calls]
    assert keys == ["idem-123"] * 3
    assert {call.request.body for call in responses.calls} == {b"amount=100&metadata%5Border%5D=7"}


@responses.activate
def test_retry_after_seconds_is_honoured(provider, make_client, fake_sleep):
    responses.get(f"{BASE}/v1/thing", status=429, headers={"Retry-After": "2"})
    responses.get(f"{BASE}/v1/thing", json={"ok": True})

    result = make_client(provider).request("GET", "/v1/thing")

    assert result.ok and result.attempts == 2
    assert fake_sleep.calls == [2.0]


@responses.activate
def test_retry_after_http_date_is_honoured(provider, make_client, fake_sleep):
    when = datetime.now(tz=UTC) + timedelta(seconds=3)
    responses.get(f"{BASE}/v1/thing", status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    responses.get(f"{BASE}/v1/thing", json={"ok": True})

    result = make_client(provider).request("GET", "/v1/thing")

    assert result.ok
    assert len(fake_sleep.calls) == 1 and 1.5 < fake_sleep.calls[0] <= 3.0


@responses.activate
def test_retry_after_beyond_the_deadline_ends_at_once_with_rate_limited(provider, make_client, fake_sleep):
    responses.get(f"{BASE}/v1/thing", status=429, headers={"Retry-After": "30"}, json={"error": "slow down"})

    result = make_client(provider).request("GET", "/v1/thing", deadline=5)

    assert result.error_code == "RATE_LIMITED" and result.retry_after == 30.0
    assert result.attempts == 1 and fake_sleep.calls == []
    assert result.latency_ms < 1000
    with pytest.raises(ProviderUnavailable):
        result.raise_for_error()


@responses.activate
def test_backoff_follows_full_jitter_with_a_seeded_random_source(make_provider, make_client, fake_sleep):
    provider = make_provider(BASE, max_attempts=5, backoff_base=0.5, backoff_max=3.0, deadline=60)
    responses.get(f"{BASE}/v1/thing", status=500)

    make_client(provider, rng=random.Random(42)).request("GET", "/v1/thing")

    expected_rng = random.Random(42)
    caps = [min(3.0, 0.5 * 2**n) for n in range(4)]  # 0.5, 1, 2, 3 (capped)
    assert fake_sleep.calls == [expected_rng.uniform(0, cap) for cap in caps]
    assert all(0 <= d <= cap for d, cap in zip(fake_sleep.calls, caps, strict=True))


def test_backoff_delay_stays_within_the_formula_bounds():
    rng = random.Random(1)
    for retry in range(8):
        for _ in range(50):
            assert 0 <= backoff_delay(retry=retry, base=0.25, cap=5, rng=rng) <= min(5, 0.25 * 2**retry)


@responses.activate
def test_no_wait_is_started_that_would_pass_the_deadline(make_provider, make_client, fake_sleep):
    provider = make_provider(BASE, max_attempts=5, backoff_base=10, backoff_max=10, deadline=1.0)
    responses.get(f"{BASE}/v1/thing", status=500)

    result = make_client(provider, rng=random.Random(3)).request("GET", "/v1/thing")

    assert result.error_code == "HTTP_500"
    assert all(d < 1.0 for d in fake_sleep.calls)


@responses.activate
def test_non_json_success_is_a_clear_error_not_a_crash(provider, make_client):
    responses.get(f"{BASE}/v1/thing", body="<html>proxy error</html>", content_type="text/html")

    result = make_client(provider).request("GET", "/v1/thing")

    assert not result.ok and result.error_code == "EBADRESPONSE" and result.status == 200
    assert "not JSON" in result.message
    with pytest.raises(ProviderBadResponse):
        result.raise_for_error()


@responses.activate
def test_non_json_error_answer_keeps_its_http_code(provider, make_client):
    responses.get(f"{BASE}/v1/thing", status=404, body="Not Found", content_type="text/plain")

    result = make_client(provider).request("GET", "/v1/thing")

    assert result.error_code == "HTTP_404" and result.data is None and result.text == "Not Found"


@responses.activate
def test_empty_2xx_is_ok_without_data(provider, make_client):
    responses.delete(f"{BASE}/v1/thing/1", status=204)

    result = make_client(provider).request("DELETE", "/v1/thing/1")

    assert result.ok and result.status == 204 and result.data is None and result.error_code is None


@responses.activate
def test_redirects_are_not_followed(provider, make_client):
    responses.get(f"{BASE}/v1/thing", status=302, headers={"Location": "https://elsewhere.test/"})

    result = make_client(provider).request("GET", "/v1/thing")

    assert result.error_code == "HTTP_302" and len(responses.calls) == 1
    with pytest.raises(ProviderBadResponse):
        result.raise_for_error()


@responses.activate
def test_default_auth_is_bearer_api_key_and_json_body(provider, make_client):
    responses.post(f"{BASE}/v1/things", json={"id": 1})

    make_client(provider).request("POST", "/v1/things", json={"a": [1, 2]}, headers={"X-Extra": "1"})

    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Bearer sk_live_KNOWN_SECRET_VALUE_42"
    assert sent.headers["Content-Type"] == "application/json" and sent.body == b'{"a":[1,2]}'
    assert sent.headers["X-Extra"] == "1"


@responses.activate
def test_disabled_provider_is_not_called(provider, make_client):
    provider.enabled = False
    provider.save()

    result = make_client(provider).request("GET", "/v1/thing")

    assert result.error_code == "PROVIDER_DISABLED" and len(responses.calls) == 0
    with pytest.raises(ProviderUnavailable):
        result.raise_for_error()


@responses.activate
def test_policy_edits_reach_a_long_lived_client(provider, make_client, settings):
    settings.INTEGRATIONS_POLICY_REFRESH_SECONDS = 0
    responses.get(f"{BASE}/v1/thing", status=500)
    client = make_client(provider)
    assert client.request("GET", "/v1/thing").attempts == 3

    type(provider).objects.filter(pk=provider.pk).update(max_attempts=1)

    assert client.request("GET", "/v1/thing").attempts == 1


def test_retry_after_parsing():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_form_encoding_nests_like_stripe():
    assert form_encode({"a": 1, "m": {"k": "v"}, "l": ["x", "y"], "b": True, "n": None}) == \
        "a=1&m%5Bk%5D=v&l%5B0%5D=x&l%5B1%5D=y&b=true"


def test_raise_for_error_returns_the_result_when_ok():
    result = CallResult(ok=True, status=200, data={})
    assert result.raise_for_error() is result
