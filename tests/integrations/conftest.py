"""Fixtures for the outbound client: providers pointed at local servers, injected sleeps."""

from __future__ import annotations

import random

import pytest

from integrations.client import ProviderClient
from integrations.credentials import credential_rotate
from integrations.models import Provider

SECRET = "sk_live_KNOWN_SECRET_VALUE_42"


class FakeSleep:
    """Records the waits the client asks for instead of sleeping."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def make_provider(db):
    """make_provider(url, **policy): a provider at `url` with a known API key."""
    counter = iter(range(1000))

    def make(url: str, *, slug: str | None = None, secret: str = SECRET, **policy) -> Provider:
        fields = {"connect_timeout": 0.5, "read_timeout": 0.5, "deadline": 5.0, "max_attempts": 3,
                  "backoff_base": 0.01, "backoff_max": 0.05, **policy}
        provider = Provider.objects.create(slug=slug or f"p{next(counter)}", name="Test provider",
                                           kind="sandbox", base_url=url, **fields)
        credential_rotate(provider=provider, purpose="api_key", value=secret)
        return provider

    return make


@pytest.fixture
def make_client(fake_sleep):
    """make_client(provider): a client that records its sleeps and uses a seeded random source."""

    def make(provider: Provider, **kwargs) -> ProviderClient:
        kwargs.setdefault("sleep", fake_sleep)
        kwargs.setdefault("rng", random.Random(7))
        return ProviderClient(provider, **kwargs)

    return make


def age_circuit(provider: Provider, seconds: float) -> None:
    """Move an open circuit's opening `seconds` into the past (as if that time had passed)."""
    from integrations import shared_state

    def older(current):
        return {**current, "opened_at": current["opened_at"] - seconds}, None

    shared_state.store().update(f"circuit:{provider.slug}", older, ttl=3600)


def _child(target, queue, index, args):
    from django.db import connections

    try:
        queue.put((index, "ok", target(index, *args)))
    except BaseException as err:  # noqa: BLE001 - reported to the parent test
        queue.put((index, "error", repr(err)))
    finally:
        connections.close_all()


def run_processes(target, count: int, *args, on_result=None, timeout: float = 30.0) -> list:
    """Run target(index, *args) in `count` forked processes; returns their results by index.

    Database connections are closed first so each child opens its own (to the same test
    database). `on_result(index, value)` is called in the parent as each result arrives.
    """
    import multiprocessing

    from django.db import connections

    ctx = multiprocessing.get_context("fork")
    connections.close_all()
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(target, queue, i, args), daemon=True) for i in range(count)]
    for proc in procs:
        proc.start()
    results: dict[int, object] = {}
    try:
        for _ in range(count):
            index, status, value = queue.get(timeout=timeout)
            if status == "error":
                raise AssertionError(f"process {index} failed: {value}")
            results[index] = value
            if on_result:
                on_result(index, value)
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return [results[i] for i in range(count)]


@pytest.fixture(params=["configured", "database"])
def shared_store(request, settings):
    """Runs a concurrency test with the store the settings pick (Redis in the PostgreSQL
    stage) and again with the database store, so both are proven under real concurrency."""
    if request.param == "database":
        settings.INTEGRATIONS_SHARED_STATE = "database"
    return request.param
