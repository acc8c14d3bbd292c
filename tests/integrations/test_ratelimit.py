"""The shared client-side token bucket."""

from __future__ import annotations

import time

import pytest

from integrations import shared_state
from integrations.client import ProviderClient
from integrations.ratelimit import RateLimitExceeded, rate_limit_permit, rate_limit_record
from tests.support.local_server import LocalServer, Reply
from tests.support.processes import run_processes


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_bucket_allows_a_burst_then_one_token_per_interval(make_provider):
    provider = make_provider("http://127.0.0.1:9", rate_limit_requests=5, rate_limit_period=1.0)
    clock = Clock()

    waits = [rate_limit_permit(provider=provider, max_wait=10, sleep=clock.sleep, clock=clock) for _ in range(8)]

    assert waits[:5] == [0, 0, 0, 0, 0]
    assert waits[5:] == pytest.approx([0.2, 0.2, 0.2])
    assert clock.now - 1_000_000.0 == pytest.approx(0.6)


def test_no_token_within_the_wait_allowed_raises_with_the_wait_needed(make_provider):
    provider = make_provider("http://127.0.0.1:9", rate_limit_requests=1, rate_limit_period=10.0)
    clock = Clock()
    rate_limit_permit(provider=provider, max_wait=1, sleep=clock.sleep, clock=clock)

    with pytest.raises(RateLimitExceeded) as err:
        rate_limit_permit(provider=provider, max_wait=1, sleep=clock.sleep, clock=clock)

    assert err.value.wait == pytest.approx(10.0)
    assert clock.now == 1_000_000.0  # it did not sleep in vain


def test_a_token_whose_request_was_never_sent_goes_back_to_the_bucket(make_provider):
    provider = make_provider("http://127.0.0.1:9", rate_limit_requests=2, rate_limit_period=60.0)
    clock = Clock()
    for _ in range(2):
        rate_limit_permit(provider=provider, max_wait=0, sleep=clock.sleep, clock=clock)

    rate_limit_record(provider=provider, sent=True)  # a sent request keeps its token spent
    with pytest.raises(RateLimitExceeded):
        rate_limit_permit(provider=provider, max_wait=0, sleep=clock.sleep, clock=clock)
    rate_limit_record(provider=provider, sent=False)

    assert rate_limit_permit(provider=provider, max_wait=0, sleep=clock.sleep, clock=clock) == 0


def test_giving_back_never_fills_the_bucket_past_its_capacity(make_provider):
    provider = make_provider("http://127.0.0.1:9", rate_limit_requests=3, rate_limit_period=60.0)
    clock = Clock()
    rate_limit_permit(provider=provider, max_wait=0, sleep=clock.sleep, clock=clock)

    for _ in range(5):
        rate_limit_record(provider=provider, sent=False)

    assert shared_state.store().get(f"ratelimit:{provider.slug}")["tokens"] == 3


def test_a_call_whose_credentials_are_missing_gives_its_token_back(make_provider):
    from integrations.errors import CredentialMissing
    from integrations.models import Credential

    with LocalServer(lambda r: Reply(200, json={})) as server:
        provider = make_provider(server.url, rate_limit_requests=1, rate_limit_period=60.0)
        Credential.objects.filter(provider=provider).delete()
        with pytest.raises(CredentialMissing):
            ProviderClient(provider).request("GET", "/v1/x")

        bucket = shared_state.store().get(f"ratelimit:{provider.slug}")
        assert bucket["tokens"] == pytest.approx(1.0, abs=0.01) and server.count == 0


def test_a_call_without_a_token_in_time_ends_rate_limited_without_a_request(make_provider, fake_sleep):
    with LocalServer(lambda r: Reply(200, json={})) as server:
        provider = make_provider(server.url, rate_limit_requests=1, rate_limit_period=60.0)
        client = ProviderClient(provider, sleep=fake_sleep)
        assert client.request("GET", "/v1/x").ok

        result = client.request("GET", "/v1/x", deadline=2)

        assert result.error_code == "RATE_LIMITED" and result.attempts == 0
        assert result.retry_after == pytest.approx(60.0, abs=0.5)
        assert server.count == 1 and fake_sleep.calls == []


def test_a_call_waits_for_a_token_within_its_deadline(make_provider):
    with LocalServer(lambda r: Reply(200, json={})) as server:
        provider = make_provider(server.url, rate_limit_requests=2, rate_limit_period=0.2)
        client = ProviderClient(provider)
        started = time.monotonic()

        results = [client.request("GET", "/v1/x") for _ in range(4)]

        assert all(r.ok for r in results)
        assert time.monotonic() - started >= 0.18  # two tokens at 0.1 s each after the burst


def _assert_within_bucket(times: list[float], capacity: int, rate: float, slack: float = 0.1) -> None:
    """Any run of requests i..j fits in a bucket: (j - i + 1) <= capacity + rate * (t_j - t_i).

    `slack` covers the gap between taking a token and the request arriving at the server
    (a process's first request also opens its database connection and TCP connection), so
    arrival order is not quite token order. Without a shared limit the two processes would
    send all 30 requests within a few milliseconds and fail this by far.
    """
    times = sorted(times)
    for i in range(len(times)):
        for j in range(i, len(times)):
            allowed = capacity + rate * (times[j] - times[i] + slack)
            assert j - i + 1 <= allowed + 1e-9, (i, j, times[j] - times[i])


@pytest.mark.postgres
def test_two_processes_together_stay_within_the_limit(make_provider, transactional_db, shared_store):
    arrivals: list[float] = []

    def handler(request):
        arrivals.append(time.monotonic())
        return Reply(200, json={})

    with LocalServer(handler) as server:
        provider = make_provider(server.url, rate_limit_requests=5, rate_limit_period=0.25, deadline=10)

        def hammer(index, provider_pk):
            from integrations.models import Provider

            client = ProviderClient(Provider.objects.get(pk=provider_pk))
            return [client.request("GET", "/v1/x").ok for _ in range(15)]

        started = time.monotonic()
        outcomes = run_processes(hammer, 2, provider.pk)
        elapsed = time.monotonic() - started

        assert all(all(o) for o in outcomes)
        assert server.count == 30
        # 30 requests at 20/s with a burst of 5 need at least (30 - 5) / 20 s.
        assert elapsed >= (30 - 5) / 20 - 0.05
        _assert_within_bucket(arrivals, capacity=5, rate=20)
