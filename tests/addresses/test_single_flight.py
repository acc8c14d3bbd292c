"""Concurrent misses for one address make one upstream call, counted at the sandbox."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from addresses import services
from integrations.models import Provider
from tests.support.local_server import LocalServer, Reply


def _concurrently(count: int, work):
    """Run `work()` in `count` threads released together; their results (or exceptions)."""
    barrier = threading.Barrier(count)

    def one():
        barrier.wait(timeout=10)
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(one) for _ in range(count)]
        return [f.result(timeout=30) for f in futures]


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_identical_misses_make_one_upstream_call(sandbox, provider):
    # The provider answers slowly, so every request arrives while the first is still fetching.
    sandbox.faults({"faults": [{"action": "delay", "ms": 300, "path": "/search"}]})
    provider = Provider.objects.get(pk=provider.pk)
    answers = _concurrently(20, lambda: services.address_verify(query="9 Test Street, Testville",
                                                                provider=provider))
    assert sandbox.stats()["by_query"] == {"9 test street, testville": 1}
    assert all(a.found and a.result == answers[0].result for a in answers)
    assert sorted(a.cached for a in answers) == [False] + [True] * 19


@pytest.mark.django_db(transaction=True)
def test_when_the_one_call_fails_the_waiters_fail_fast_too(provider):
    def slow_outage(request):
        time.sleep(0.3)  # server-side latency: every request arrives while this one is in flight
        return Reply(503, json={"error": "down"})

    with LocalServer(slow_outage) as upstream:
        Provider.objects.filter(pk=provider.pk).update(base_url=upstream.url, max_attempts=1,
                                                       rate_limit_requests=10_000)
        provider = Provider.objects.get(pk=provider.pk)

        def work():
            try:
                return services.address_verify(query="not there", provider=provider)
            except services.ProviderUnavailableError as err:
                return err

        answers = _concurrently(10, work)
    assert all(isinstance(a, services.ProviderUnavailableError) for a in answers)
    assert upstream.count == 1  # nobody else tried while the one call was failing


@pytest.mark.django_db
def test_an_unreachable_cache_fails_open(sandbox, provider, monkeypatch):
    from addresses import cache as verify_cache

    class Down:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("cache down")
            return fail

    monkeypatch.setattr(verify_cache, "cache", Down())
    answers = [services.address_verify(query="11 Test Street, Testville", provider=provider) for _ in range(2)]
    assert [a.cached for a in answers] == [False, False] and answers[0].found
    assert sandbox.stats()["by_query"] == {"11 test street, testville": 2}
