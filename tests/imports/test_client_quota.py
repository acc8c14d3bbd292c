"""The client learns X-RateLimit-Remaining/Reset for every provider: a used-up quota makes the
next calls wait for the reset (in every process), within their deadline; Retry-After wins."""

from __future__ import annotations

import time

import pytest
import responses
from django.conf import settings
from requests.structures import CaseInsensitiveDict

from integrations.client import RATE_LIMITED, ProviderClient
from integrations.credentials import credential_rotate
from integrations.models import Provider
from integrations.ratelimit import quota_wait
from tests.e2e.conftest import database_url
from tests.support import processes

URL = "https://partner.example"


def quota(remaining: int, reset: float | str) -> dict[str, str]:
    return {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset)}


@pytest.fixture
def provider(db) -> Provider:
    provider = Provider.objects.create(slug="quota", name="Quota", kind="sandbox", base_url=URL, deadline=10,
                                       max_attempts=3, rate_limit_requests=1_000_000, rate_limit_period=1.0)
    credential_rotate(provider=provider, purpose="api_key", value="sk_test_quota")
    return provider


def test_reading_the_headers():
    now = 1_800_000_000.0
    assert quota_wait(quota(3, 20), now=now) is None  # something left: nothing to do
    assert quota_wait({}, now=now) is None
    assert quota_wait(quota(0, 20), now=now) == 20  # seconds (IETF draft, most APIs)
    assert quota_wait(quota(0, int(now) + 45), now=now) == 45  # a Unix time (GitHub)
    assert quota_wait(quota(0, int(now) - 5), now=now) == 0
    assert quota_wait(quota(0, 20), now=now, retry_after=2.0) == 2.0  # Retry-After wins
    assert quota_wait(quota(0, "soon"), now=now) is None
    # Header names are case-insensitive, as the client's answers carry them.
    assert quota_wait(CaseInsensitiveDict({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "7"}), now=now) == 7


@responses.activate
def test_when_nothing_is_left_the_next_call_waits_for_the_reset(provider):
    responses.get(f"{URL}/v1/items", json={"ok": 1}, headers=quota(0, 1))
    responses.get(f"{URL}/v1/items", json={"ok": 2}, headers=quota(9, 0))
    client = ProviderClient(provider)

    assert client.request("GET", "/v1/items").ok
    started = time.monotonic()
    assert client.request("GET", "/v1/items").data == {"ok": 2}
    assert time.monotonic() - started >= 0.9
    started = time.monotonic()
    assert client.request("GET", "/v1/items").ok  # quota back: no wait
    assert time.monotonic() - started < 0.5


@responses.activate
def test_a_reset_past_the_deadline_is_rate_limited_at_once_without_a_request(provider):
    responses.get(f"{URL}/v1/items", json={}, headers=quota(0, 30))
    client = ProviderClient(provider)
    assert client.request("GET", "/v1/items").ok

    started = time.monotonic()
    result = client.request("GET", "/v1/items", deadline=2)

    assert (result.ok, result.error_code) == (False, RATE_LIMITED)
    assert 28 <= result.retry_after <= 30
    assert time.monotonic() - started < 0.5 and len(responses.calls) == 1


@responses.activate
def test_retry_after_takes_precedence_over_the_reset(provider):
    responses.get(f"{URL}/v1/items", status=429, json={}, headers={**quota(0, 30), "Retry-After": "1"})
    responses.get(f"{URL}/v1/items", json={"ok": True}, headers=quota(5, 0))
    client = ProviderClient(provider)
    started = time.monotonic()

    assert client.request("GET", "/v1/items").ok  # retried after 1 s, not 30
    assert client.request("GET", "/v1/items").ok
    assert 0.9 <= time.monotonic() - started < 5


@responses.activate
def test_headers_with_quota_left_cost_nothing(provider):
    responses.get(f"{URL}/v1/items", json={}, headers=quota(4, 10))
    client = ProviderClient(provider)
    client.request("GET", "/v1/items")
    started = time.monotonic()
    for _ in range(5):
        assert client.request("GET", "/v1/items").ok
    assert time.monotonic() - started < 1


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_a_quota_learned_in_another_process_pauses_this_one(tmp_path):
    provider = Provider.objects.create(slug="quota", name="Quota", kind="sandbox", base_url=URL, deadline=10,
                                       rate_limit_requests=1_000_000, rate_limit_period=1.0)
    credential_rotate(provider=provider, purpose="api_key", value="sk_test_quota")
    responses.get(f"{URL}/v1/items", json={})
    code = ("import time; from integrations.models import Provider; "
            "from integrations.ratelimit import rate_limit_learn; print(time.time(), "
            "rate_limit_learn(provider=Provider.objects.get(slug='quota'), "
            "headers={'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '3'}))")
    env = {"DATABASE_URL": database_url(), "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS)}
    other = processes.start("learner", processes.manage("shell", "-c", code), env=env, log_dir=tmp_path)
    assert other.popen.wait(60) == 0, other.log()
    learned_at, pause = map(float, other.log().strip().splitlines()[-1].split())
    other.stop()
    assert pause == 3.0 and time.time() < learned_at + 3.0

    assert ProviderClient(provider).request("GET", "/v1/items").ok
    # The other process was told "nothing left for 3 s": this call waited for that.
    assert time.time() >= learned_at + 2.99
    assert len(responses.calls) == 1
