"""What each process keeps locally to stay off the shared store on healthy calls: leased
rate-limit tokens and a short-lived copy of a closed circuit. Neither may weaken the limit
or the breaker beyond the documented staleness."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import urllib3.util.connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from integrations import circuit, ratelimit, shared_state
from integrations.circuit import CLOSED, OPEN, circuit_status
from integrations.client import ProviderClient
from integrations.ratelimit import RateLimitExceeded, lease_policy, rate_limit_acquire
from tests.integrations.conftest import run_processes
from tests.integrations.test_ratelimit import _assert_within_bucket
from tests.support.local_server import LocalServer, Reply


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


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


@pytest.fixture
def counting_store(monkeypatch):
    store = CountingStore(shared_state.store())
    monkeypatch.setattr(shared_state, "store", lambda: store)
    return store


# --- leases ---------------------------------------------------------------------------------

def test_lease_policy_follows_the_rate_and_stays_off_for_slow_providers(make_provider):
    fast = make_provider("http://127.0.0.1:9", rate_limit_requests=100, rate_limit_period=1.0)
    busy = make_provider("http://127.0.0.1:9", rate_limit_requests=1_000_000, rate_limit_period=1.0)
    slow = make_provider("http://127.0.0.1:9", rate_limit_requests=600, rate_limit_period=60.0)

    # 100/s: a lease is what refills in 0.05 s (5% of the period); the bucket holds 5 fewer.
    assert lease_policy(fast) == ratelimit.LeasePolicy(size=5, seconds=0.05, shared_capacity=95.0)
    assert lease_policy(busy).size == 20  # INTEGRATIONS_RATE_LIMIT_LEASE_MAX
    # 10/s: 0.1 s holds one token, so every attempt asks the shared bucket, as without leases.
    assert lease_policy(slow) == ratelimit.LeasePolicy(size=1, seconds=0.0, shared_capacity=600.0)


def test_a_lease_takes_several_tokens_in_one_round_trip(make_provider, counting_store):
    provider = make_provider("http://127.0.0.1:9", rate_limit_requests=100, rate_limit_period=1.0)
    wall, local = Clock(), Clock(50.0)

    for _ in range(10):
        assert rate_limit_acquire(provider=provider, max_wait=0, clock=wall, monotonic=local)[0] == 0

    assert counting_store.calls.count("take_token") == 2  # 5 tokens per lease
    bucket = shared_state.store().get(f"ratelimit:{provider.slug}")
    assert bucket["tokens"] == pytest.approx(95 - 10)


def test_leased_tokens_expire_unused_after_the_lease_seconds(make_provider, counting_store):
    provider = make_provider("http://127.0.0.1:9", rate_limit_requests=100, rate_limit_period=1.0)
    wall, local = Clock(), Clock(50.0)
    rate_limit_acquire(provider=provider, max_wait=0, clock=wall, monotonic=local)  # 1 used, 4 kept
    local.now += 0.049
    rate_limit_acquire(provider=provider, max_wait=0, clock=wall, monotonic=local)
    assert counting_store.calls.count("take_token") == 1

    local.now += 0.001  # the lease is 0.05 s old: its 3 remaining tokens are gone
    rate_limit_acquire(provider=provider, max_wait=0, clock=wall, monotonic=local)

    assert counting_store.calls.count("take_token") == 2


def test_a_lease_takes_only_tokens_the_shared_bucket_has(make_provider):
    provider = make_provider("http://127.0.0.1:9", rate_limit_requests=100, rate_limit_period=1.0)
    wall, local = Clock(), Clock(50.0)

    taken = 0
    with pytest.raises(RateLimitExceeded):
        while True:
            rate_limit_acquire(provider=provider, max_wait=0, clock=wall, monotonic=local)
            taken += 1

    # The burst of a leasing provider is its capacity less one lease-time of refill (95):
    # this is what keeps "never more than the limit" exact although leased tokens are
    # spent later than they left the bucket.
    assert taken == 95


class _MemoryStore:
    """The token-bucket step of the real stores, in memory, for the simulation below."""

    name = "memory"

    def __init__(self):
        self.values: dict = {}

    def take_token(self, key, *, capacity, rate, now, ttl, also_get=None, count=1):
        new, (wait, taken) = shared_state._take_token(self.values.get(key), capacity, rate, now, count)
        self.values[key] = new
        return wait, shared_state.UNREAD, taken


def _simulate(monkeypatch, steps) -> list[float]:
    """Simulated processes, each with its own reserve, ask for tokens at the given moments
    (process index, seconds since the previous step); returns the times tokens were granted."""
    provider = SimpleNamespace(pk=1, slug="sim", rate_limit_requests=40, rate_limit_period=0.5)
    store = _MemoryStore()
    monkeypatch.setattr(shared_state, "store", lambda: store)
    reserves = {}
    clock = Clock(0.0)
    sends: list[float] = []
    assert lease_policy(provider).size == 8  # leases of 0.1 s at 80/s: the simulation uses them
    for process, advance in steps:
        clock.now += advance
        monkeypatch.setattr(ratelimit, "_reserve", reserves.setdefault(process, ratelimit._Reserve()))
        try:
            rate_limit_acquire(provider=provider, max_wait=0, clock=clock, monotonic=clock)
        except RateLimitExceeded:
            continue
        sends.append(clock.now)
    return sends


def test_a_process_spending_old_leased_tokens_during_anothers_burst_stays_within_the_limit(
        monkeypatch, settings):
    """The worst case leases allow: A leases at t=0 and spends the rest of its lease just
    before it expires, exactly when B drains the refilled bucket. Without the smaller shared
    bucket this sends 46 requests at one instant for a limit of 40."""
    settings.INTEGRATIONS_RATE_LIMIT_LEASE_FRACTION = 0.25
    steps = [("A", 0.0)] + [("A", 0.0999)] + [("A", 0.0)] * 6 + [("B", 0.0)] * 60
    sends = _simulate(monkeypatch, steps)

    at_the_end = [t for t in sends if t > 0.09]
    assert len(at_the_end) <= 40
    _assert_within_bucket(sends, capacity=40, rate=80, slack=0)


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.0, 0.0, 0.0, 0.001, 0.02, 0.0999, 0.3, 0.6])),
                      min_size=1, max_size=300))
def test_leasing_processes_never_exceed_the_limit_in_any_window(monkeypatch, settings, steps):
    """Four simulated processes take tokens at random moments; the sends, wherever their
    tokens came from, fit the bucket in every window."""
    settings.INTEGRATIONS_RATE_LIMIT_LEASE_FRACTION = 0.25
    _assert_within_bucket(_simulate(monkeypatch, steps), capacity=40, rate=80, slack=0)


@pytest.mark.postgres
def test_two_leasing_processes_together_stay_within_the_limit(make_provider, transactional_db, shared_store,
                                                              settings):
    settings.INTEGRATIONS_RATE_LIMIT_LEASE_FRACTION = 0.25
    arrivals: list[float] = []

    def handler(request):
        arrivals.append(time.monotonic())
        return Reply(200, json={})

    with LocalServer(handler) as server:
        provider = make_provider(server.url, rate_limit_requests=40, rate_limit_period=0.5, deadline=10)
        assert lease_policy(provider).size == 8  # leases of 0.1 s at 80/s

        def hammer(index, provider_pk):
            from integrations.models import Provider

            client = ProviderClient(Provider.objects.get(pk=provider_pk))
            return [client.request("GET", "/v1/x").ok for _ in range(40)]

        started = time.monotonic()
        outcomes = run_processes(hammer, 2, provider.pk)
        elapsed = time.monotonic() - started

        assert all(all(o) for o in outcomes)
        assert server.count == 80
        assert elapsed >= (80 - 40) / 80 - 0.05
        _assert_within_bucket(arrivals, capacity=40, rate=80, slack=0.05)


# --- the local copy of a closed circuit ------------------------------------------------------

def _open_elsewhere(provider) -> None:
    """What another process's failures leave in the shared store: an open circuit."""
    now = time.time()
    shared_state.store().update(
        f"circuit:{provider.slug}",
        lambda cur: ({**(cur or {}), "state": OPEN, "failures": 5, "opened_at": now, "changed_at": now}, None),
        ttl=3600)


def test_healthy_calls_stay_off_the_shared_store(make_provider, counting_store, monkeypatch):
    local = Clock(50.0)
    monkeypatch.setattr(circuit, "_monotonic", local)
    monkeypatch.setattr(ratelimit, "_monotonic", local)
    with LocalServer(lambda r: Reply(200, json={"ok": True})) as server:
        provider = make_provider(server.url, rate_limit_requests=1_000_000, rate_limit_period=1.0)
        client = ProviderClient(provider)
        counting_store.calls.clear()  # saving a credential may touch the store (other apps' caches)

        assert all(client.request("GET", "/v1/x").ok for _ in range(40))

        assert server.count == 40
        # Two leases of 20 tokens; the first also read the circuit. Nothing else.
        assert counting_store.calls == ["take_token", "take_token"]

        local.now += 0.1  # the circuit copy is now stale: it is read again once
        assert client.request("GET", "/v1/x").ok
        assert counting_store.calls[2:] == ["take_token"]


def test_a_circuit_opened_elsewhere_is_honoured_within_the_staleness(make_provider, monkeypatch):
    local = Clock(50.0)
    monkeypatch.setattr(circuit, "_monotonic", local)
    with LocalServer(lambda r: Reply(200, json={"ok": True})) as server:
        provider = make_provider(server.url, rate_limit_requests=1_000_000, rate_limit_period=1.0)
        client = ProviderClient(provider)
        assert client.request("GET", "/v1/x").ok

        _open_elsewhere(provider)
        local.now += 0.0999
        # Still within INTEGRATIONS_CIRCUIT_LOCAL_SECONDS (0.1) of the last read: the
        # documented staleness, this process does not know yet.
        assert client.request("GET", "/v1/x").ok
        assert server.count == 2

        local.now += 0.0002

        def no_sockets(*args, **kwargs):
            raise AssertionError("a socket was opened while the circuit is open")

        monkeypatch.setattr(urllib3.util.connection, "create_connection", no_sockets)
        results = [ProviderClient(provider).request("GET", "/v1/x") for _ in range(3)]
        assert [r.error_code for r in results] == ["CIRCUIT_OPEN"] * 3
        assert server.count == 2


def test_without_a_local_copy_an_open_circuit_is_honoured_at_once(make_provider, settings):
    settings.INTEGRATIONS_CIRCUIT_LOCAL_SECONDS = 0
    with LocalServer(lambda r: Reply(200, json={"ok": True})) as server:
        provider = make_provider(server.url, rate_limit_requests=1_000_000, rate_limit_period=1.0)
        client = ProviderClient(provider)
        assert client.request("GET", "/v1/x").ok

        _open_elsewhere(provider)

        assert client.request("GET", "/v1/x").error_code == "CIRCUIT_OPEN"
        assert server.count == 1


def test_own_failures_and_the_success_after_them_reach_the_shared_state_at_once(make_provider, monkeypatch):
    local = Clock(50.0)  # frozen: the local copy never goes stale by itself in this test
    monkeypatch.setattr(circuit, "_monotonic", local)
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


def test_the_admin_reset_is_seen_at_once_by_its_own_process(make_provider, monkeypatch):
    local = Clock(50.0)
    monkeypatch.setattr(circuit, "_monotonic", local)
    with LocalServer(script=[Reply(500), Reply(200, json={})]) as server:
        provider = make_provider(server.url, circuit_failure_threshold=1, max_attempts=1)
        client = ProviderClient(provider)
        client.request("GET", "/v1/x")
        assert client.request("GET", "/v1/x").error_code == "CIRCUIT_OPEN"

        circuit.circuit_reset(provider=provider)

        assert client.request("GET", "/v1/x").ok
        assert circuit_status(provider=provider).state == CLOSED


@pytest.mark.postgres
def test_a_circuit_opened_by_another_process_stops_this_one_within_the_staleness(
        make_provider, transactional_db, shared_store):
    """Real processes: the child's failures open the circuit; the parent, which had just read
    it closed, is refused from at most INTEGRATIONS_CIRCUIT_LOCAL_SECONDS later on."""

    def handler(request):
        return Reply(500) if request.path == "/v1/fail" else Reply(200, json={})

    with LocalServer(handler) as server:
        provider = make_provider(server.url, circuit_failure_threshold=2, max_attempts=1,
                                 rate_limit_requests=1_000_000, rate_limit_period=1.0)
        client = ProviderClient(provider)
        assert client.request("GET", "/v1/ok").ok  # this process now holds a closed copy

        def fail_twice(index, provider_pk):
            from integrations.models import Provider

            c = ProviderClient(Provider.objects.get(pk=provider_pk))
            codes = [c.request("GET", "/v1/fail").error_code for _ in range(2)]
            return codes, time.monotonic()

        (codes, opened_at), = run_processes(fail_twice, 1, provider.pk)
        assert codes == ["HTTP_500", "HTTP_500"]
        assert circuit_status(provider=provider).state == OPEN

        # Call until refused (bounded). This process read the state before the child opened
        # it, so no call starting 0.1 s after the opening may still go out.
        sent_started, refused = [], False
        while not refused and time.monotonic() - opened_at < 2:
            started = time.monotonic()
            code = client.request("GET", "/v1/ok").error_code
            if code == "CIRCUIT_OPEN":
                refused = True
            else:
                assert code is None
                sent_started.append(started)

        assert refused
        assert all(started < opened_at + 0.1 for started in sent_started)
        assert client.request("GET", "/v1/ok").error_code == "CIRCUIT_OPEN"


def test_a_success_on_an_older_view_does_not_close_a_circuit_opened_meanwhile(make_provider, monkeypatch):
    """Only the half-open probe closes a circuit: a success that went out on a stale closed
    copy (here one with failures, so its success is written) leaves it open."""
    local = Clock(50.0)
    monkeypatch.setattr(circuit, "_monotonic", local)
    with LocalServer(script=[Reply(500), Reply(200, json={})]) as server:
        provider = make_provider(server.url, circuit_failure_threshold=5, max_attempts=1,
                                 rate_limit_requests=1_000_000, rate_limit_period=1.0)
        client = ProviderClient(provider)
        assert client.request("GET", "/v1/x").error_code == "HTTP_500"
        # This process re-read the state after its failure: closed, one failure. Then
        # another process opens the circuit, within this copy's staleness.
        assert circuit.circuit_needs_read(provider=provider)
        assert circuit.circuit_permit(provider=provider, probe_ttl=5).dirty
        _open_elsewhere(provider)

        assert client.request("GET", "/v1/x").ok

        assert server.count == 2
        status = circuit_status(provider=provider)
        assert status.state == OPEN and status.failures == 5


def test_a_circuit_opened_while_waiting_for_a_token_is_honoured(make_provider, settings):
    """The circuit state read with the first token request is not trusted after a rate-limit
    wait: it is read again, so a circuit opened meanwhile stops the attempt."""
    settings.INTEGRATIONS_CIRCUIT_LOCAL_SECONDS = 0  # every attempt reads it with its token
    with LocalServer(lambda r: Reply(200, json={})) as server:
        provider = make_provider(server.url, rate_limit_requests=1, rate_limit_period=0.1)

        def sleep_while_it_opens(seconds):
            _open_elsewhere(provider)
            time.sleep(seconds)  # the rate-limit wait itself (a token is 0.1 s away)

        client = ProviderClient(provider, sleep=sleep_while_it_opens)
        assert client.request("GET", "/v1/x").ok

        result = client.request("GET", "/v1/x")

        assert result.error_code == "CIRCUIT_OPEN" and server.count == 1
