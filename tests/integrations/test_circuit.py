"""The shared circuit breaker: opening, failing fast without sockets, half-open probing."""

from __future__ import annotations

import threading
import time

import pytest
import urllib3.util.connection

from integrations import shared_state
from integrations.circuit import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    SUCCESS,
    circuit_permit,
    circuit_record,
    circuit_reset,
    circuit_status,
)
from integrations.client import ProviderClient, ProviderUnavailable
from tests.integrations.conftest import age_circuit
from tests.support.local_server import LocalServer, Reply
from tests.support.processes import run_processes


def failing(request):
    return Reply(500, json={"error": "down"})


def test_circuit_opens_after_the_threshold_then_fails_fast_without_a_socket(make_provider, monkeypatch):
    with LocalServer(failing) as server:
        provider = make_provider(server.url, circuit_failure_threshold=3, max_attempts=1)
        client = ProviderClient(provider)
        for _ in range(2):
            assert client.request("GET", "/v1/x").error_code == "HTTP_500"
        assert circuit_status(provider=provider).state == CLOSED
        assert client.request("GET", "/v1/x").error_code == "HTTP_500"
        assert circuit_status(provider=provider).state == OPEN
        assert server.count == 3

        def no_sockets(*args, **kwargs):
            raise AssertionError("a socket was opened while the circuit is open")

        monkeypatch.setattr(urllib3.util.connection, "create_connection", no_sockets)
        started = time.monotonic()
        result = ProviderClient(provider).request("GET", "/v1/x")

        assert result.error_code == "CIRCUIT_OPEN" and result.attempts == 0 and result.status is None
        assert time.monotonic() - started < 0.5
        assert server.count == 3
        with pytest.raises(ProviderUnavailable):
            result.raise_for_error()


def test_failed_retries_count_towards_the_threshold_and_stop_the_call(make_provider):
    with LocalServer(failing) as server:
        provider = make_provider(server.url, circuit_failure_threshold=2, max_attempts=5)

        result = ProviderClient(provider, sleep=lambda s: None).request("GET", "/v1/x")

        assert result.error_code == "CIRCUIT_OPEN" and result.attempts == 2 and server.count == 2


def test_business_4xx_answers_never_count_as_failures(make_provider):
    replies = [Reply(500), Reply(422, json={"error": "declined"}), Reply(500), Reply(404), Reply(500)]
    with LocalServer(script=replies) as server:
        provider = make_provider(server.url, circuit_failure_threshold=2, max_attempts=1)
        client = ProviderClient(provider)
        codes = [client.request("GET", "/v1/x").error_code for _ in range(5)]

        assert codes == ["HTTP_500", "HTTP_422", "HTTP_500", "HTTP_404", "HTTP_500"]
        status = circuit_status(provider=provider)
        assert status.state == CLOSED and status.failures == 1 and status.total_failures == 3


def test_after_the_open_period_one_probe_closes_the_circuit_on_success(make_provider):
    with LocalServer(script=[Reply(500), Reply(200, json={"ok": True})]) as server:
        provider = make_provider(server.url, circuit_failure_threshold=1, max_attempts=1, circuit_open_seconds=30)
        client = ProviderClient(provider)
        client.request("GET", "/v1/x")
        assert client.request("GET", "/v1/x").error_code == "CIRCUIT_OPEN"

        age_circuit(provider, 31)
        assert circuit_status(provider=provider).state == HALF_OPEN

        result = client.request("GET", "/v1/x")

        assert result.ok and server.count == 2
        assert circuit_status(provider=provider).state == CLOSED


def test_a_failed_probe_opens_the_circuit_again(make_provider):
    with LocalServer(failing) as server:
        provider = make_provider(server.url, circuit_failure_threshold=1, max_attempts=3, circuit_open_seconds=30)
        client = ProviderClient(provider, sleep=lambda s: None)
        client.request("GET", "/v1/x")
        age_circuit(provider, 31)

        result = client.request("GET", "/v1/x")

        # The probe failed; its retry found the circuit open again.
        assert result.error_code == "CIRCUIT_OPEN" and result.attempts == 1 and server.count == 2
        status = circuit_status(provider=provider)
        assert status.state == OPEN and status.total_opens == 2
        assert status.reopens_at > time.time() + 25


def test_only_one_probe_is_let_through_while_it_is_in_flight(make_provider):
    with LocalServer(failing) as server:
        provider = make_provider(server.url, circuit_failure_threshold=1, max_attempts=1)
        ProviderClient(provider).request("GET", "/v1/x")
        age_circuit(provider, 60)

        first = circuit_permit(provider=provider, probe_ttl=5)
        second = circuit_permit(provider=provider, probe_ttl=5)

        assert first is not None and first.probe
        assert second is None


def test_threads_racing_for_the_probe_let_exactly_one_through(make_provider, transactional_db):
    """In-process variant of the cross-process test below (runs on SQLite too)."""
    release = threading.Event()
    probe_arrived = threading.Event()

    def handler(request):
        if request.path.startswith("/v1/fail"):
            return Reply(500)
        probe_arrived.set()
        release.wait(10)
        return Reply(200, json={"ok": True})

    with LocalServer(handler) as server:
        provider = make_provider(server.url, circuit_failure_threshold=1, max_attempts=1)
        ProviderClient(provider).request("GET", "/v1/fail")
        age_circuit(provider, 60)
        import queue

        results: queue.Queue = queue.Queue()
        barrier = threading.Barrier(4)

        def worker():
            from django.db import connections

            barrier.wait()
            results.put(ProviderClient(provider).request("GET", "/v1/probe").error_code)
            connections.close_all()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        # Three are refused while the probe is held at the server; only then is it answered.
        refused = [results.get(timeout=10) for _ in range(3)]
        assert probe_arrived.wait(10)
        release.set()
        probe = results.get(timeout=10)
        for t in threads:
            t.join(10)

        assert refused == ["CIRCUIT_OPEN"] * 3 and probe is None
        assert server.count == 2
        assert circuit_status(provider=provider).state == CLOSED


@pytest.mark.postgres
def test_two_processes_asking_at_once_let_exactly_one_probe_through(make_provider, transactional_db, shared_store):
    release = threading.Event()

    def handler(request):
        if request.path.startswith("/v1/fail"):
            return Reply(500)
        release.wait(10)  # hold the probe until the other process has been refused
        return Reply(200, json={"ok": True})

    with LocalServer(handler) as server:
        provider = make_provider(server.url, circuit_failure_threshold=1, max_attempts=1)
        ProviderClient(provider).request("GET", "/v1/fail")
        age_circuit(provider, 60)
        import multiprocessing

        barrier = multiprocessing.get_context("fork").Barrier(2)

        def ask(index, provider_pk):
            from integrations.models import Provider

            p = Provider.objects.get(pk=provider_pk)
            client = ProviderClient(p)
            barrier.wait(10)
            return client.request("GET", "/v1/probe").error_code

        def on_result(index, code):
            if code == "CIRCUIT_OPEN":
                release.set()

        codes = run_processes(ask, 2, provider.pk, on_result=on_result)

        assert sorted(codes, key=str) == ["CIRCUIT_OPEN", None]
        assert server.count == 2  # the failure that opened it, and one probe
        assert circuit_status(provider=provider).state == CLOSED


def test_reset_closes_an_open_circuit(make_provider):
    with LocalServer(failing) as server:
        provider = make_provider(server.url, circuit_failure_threshold=1, max_attempts=1)
        ProviderClient(provider).request("GET", "/v1/x")
        assert circuit_status(provider=provider).state == OPEN

        circuit_reset(provider=provider)

        status = circuit_status(provider=provider)
        assert status.state == CLOSED and status.failures == 0 and status.total_opens == 1
        assert ProviderClient(provider).request("GET", "/v1/x").error_code == "HTTP_500"


def test_an_unreachable_shared_store_fails_open(make_provider, monkeypatch, caplog):
    class Broken:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("shared store down")

            return fail

    with LocalServer(lambda r: Reply(200, json={"ok": True})) as server:
        provider = make_provider(server.url)
        monkeypatch.setattr(shared_state, "store", lambda: Broken())

        result = ProviderClient(provider).request("GET", "/v1/x")

        assert result.ok and server.count == 1
        assert "shared state unavailable" in caplog.text


# --- exact shared state: every attempt asks the store, nothing is trusted locally ------------

class CountingStore:
    """Wraps the real store and counts the round trips the client makes to it."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __getattr__(self, name):
        attr = getattr(self.real, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted


def _open_elsewhere(provider) -> None:
    """What another process's failures leave in the shared store: an open circuit."""
    now = time.time()
    shared_state.store().update(
        f"circuit:{provider.slug}",
        lambda cur: ({**(cur or {}), "state": OPEN, "failures": 5, "opened_at": now, "changed_at": now}, None),
        ttl=3600)


def no_sockets(*args, **kwargs):
    raise AssertionError("a socket was opened while the circuit is open")


def test_a_healthy_attempt_reads_the_circuit_takes_a_token_and_writes_nothing_else(make_provider, monkeypatch):
    store = CountingStore(shared_state.store())
    monkeypatch.setattr(shared_state, "store", lambda: store)
    with LocalServer(lambda r: Reply(200, json={"ok": True})) as server:
        provider = make_provider(server.url, rate_limit_requests=1_000_000, rate_limit_period=1.0)
        client = ProviderClient(provider)
        store.calls.clear()  # saving a credential may touch the store (other apps' caches)

        assert all(client.request("GET", "/v1/x").ok for _ in range(3))

        assert store.calls == ["get", "take_token"] * 3


def test_a_circuit_opened_elsewhere_stops_the_next_attempt_at_once(make_provider, monkeypatch):
    with LocalServer(lambda r: Reply(200, json={"ok": True})) as server:
        provider = make_provider(server.url, rate_limit_requests=1_000_000, rate_limit_period=1.0)
        client = ProviderClient(provider)
        assert client.request("GET", "/v1/x").ok

        _open_elsewhere(provider)
        monkeypatch.setattr(urllib3.util.connection, "create_connection", no_sockets)

        assert client.request("GET", "/v1/x").error_code == "CIRCUIT_OPEN"
        assert server.count == 1


def test_own_failures_and_the_success_after_them_reach_the_shared_state_at_once(make_provider):
    replies = [Reply(200, json={}), Reply(500), Reply(500), Reply(200, json={}), Reply(500), Reply(500),
               Reply(500)]
    with LocalServer(script=replies) as server:
        provider = make_provider(server.url, circuit_failure_threshold=3, max_attempts=1,
                                 rate_limit_requests=1_000_000, rate_limit_period=1.0)
        client = ProviderClient(provider)
        codes = [client.request("GET", "/v1/x").error_code for _ in range(3)]
        assert codes == [None, "HTTP_500", "HTTP_500"]
        assert circuit_status(provider=provider).failures == 2

        assert client.request("GET", "/v1/x").ok  # resets the shared count: 2 more do not open
        assert circuit_status(provider=provider).failures == 0
        codes = [client.request("GET", "/v1/x").error_code for _ in range(4)]

        assert codes == ["HTTP_500", "HTTP_500", "HTTP_500", "CIRCUIT_OPEN"]
        assert circuit_status(provider=provider).state == OPEN and server.count == 7


def test_the_admin_reset_is_seen_at_once_by_a_running_client(make_provider):
    with LocalServer(script=[Reply(500), Reply(200, json={})]) as server:
        provider = make_provider(server.url, circuit_failure_threshold=1, max_attempts=1)
        client = ProviderClient(provider)
        client.request("GET", "/v1/x")
        assert client.request("GET", "/v1/x").error_code == "CIRCUIT_OPEN"

        circuit_reset(provider=provider)

        assert client.request("GET", "/v1/x").ok
        assert circuit_status(provider=provider).state == CLOSED


def test_a_success_on_an_older_view_does_not_close_a_circuit_opened_meanwhile(make_provider):
    """Only the half-open probe closes a circuit: an attempt that was permitted while the
    circuit was closed (with failures, so its success is written) and answered after another
    process opened it leaves it open."""
    provider = make_provider("http://127.0.0.1:9", circuit_failure_threshold=5)
    circuit_record(provider=provider, permit=circuit_permit(provider=provider, probe_ttl=5), outcome="failure")
    permit = circuit_permit(provider=provider, probe_ttl=5)
    assert permit.dirty and not permit.probe

    _open_elsewhere(provider)
    circuit_record(provider=provider, permit=permit, outcome=SUCCESS)

    status = circuit_status(provider=provider)
    assert status.state == OPEN and status.failures == 5


def test_a_circuit_opened_while_waiting_for_a_token_is_honoured(make_provider):
    """The breaker is asked again after a rate-limit wait, so a circuit opened meanwhile stops
    the attempt; the token it waited for goes back to the bucket."""
    with LocalServer(lambda r: Reply(200, json={})) as server:
        provider = make_provider(server.url, rate_limit_requests=1, rate_limit_period=0.1)

        def sleep_while_it_opens(seconds):
            _open_elsewhere(provider)
            time.sleep(seconds)  # the rate-limit wait itself (a token is 0.1 s away)

        client = ProviderClient(provider, sleep=sleep_while_it_opens)
        assert client.request("GET", "/v1/x").ok

        result = client.request("GET", "/v1/x")

        assert result.error_code == "CIRCUIT_OPEN" and server.count == 1
        bucket = shared_state.store().get(f"ratelimit:{provider.slug}")
        assert bucket["tokens"] == pytest.approx(1.0, abs=0.01)


def test_a_call_the_circuit_refuses_takes_no_rate_limit_token(make_provider):
    with LocalServer(script=[Reply(500), Reply(200, json={})]) as server:
        provider = make_provider(server.url, circuit_failure_threshold=1, max_attempts=1,
                                 rate_limit_requests=2, rate_limit_period=60.0)
        client = ProviderClient(provider)
        assert client.request("GET", "/v1/x").error_code == "HTTP_500"  # opens it; 1 token left

        assert [client.request("GET", "/v1/x").error_code for _ in range(5)] == ["CIRCUIT_OPEN"] * 5

        circuit_reset(provider=provider)
        assert client.request("GET", "/v1/x", deadline=1).ok  # the last token is still there
        assert server.count == 2


@pytest.mark.postgres
def test_a_circuit_opened_by_another_process_stops_this_one_at_once(make_provider, transactional_db,
                                                                     shared_store, monkeypatch):
    """Real processes: the child's failures open the circuit; the parent, which had just
    sent a call with the circuit closed, sends nothing more."""

    def handler(request):
        return Reply(500) if request.path == "/v1/fail" else Reply(200, json={})

    with LocalServer(handler) as server:
        provider = make_provider(server.url, circuit_failure_threshold=2, max_attempts=1,
                                 rate_limit_requests=1_000_000, rate_limit_period=1.0)
        client = ProviderClient(provider)
        assert client.request("GET", "/v1/ok").ok

        def fail_twice(index, provider_pk):
            from integrations.models import Provider

            c = ProviderClient(Provider.objects.get(pk=provider_pk))
            return [c.request("GET", "/v1/fail").error_code for _ in range(2)]

        assert run_processes(fail_twice, 1, provider.pk) == [["HTTP_500", "HTTP_500"]]
        monkeypatch.setattr(urllib3.util.connection, "create_connection", no_sockets)

        assert client.request("GET", "/v1/ok").error_code == "CIRCUIT_OPEN"
        assert server.count == 3
