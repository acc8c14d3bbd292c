#!/usr/bin/env python
"""Per-call overhead of the outbound client against a bare requests.Session.

The same GETs against one local loopback server that answers in 5 ms (a fast in-region
API) and runs in its own process, as a real provider would (in the benchmark's process its
threads would compete with the client for the GIL), interleaved call by call between a bare
session and `ProviderClient` (each side first in turn), so all sides see the same machine
noise. The client runs with everything on and exact shared state: the circuit breaker read
and a token taken from the shared rate limit on every attempt (a limit too high to wait),
one JSON log line per attempt (formatted and written to /dev/null), an OutboundCall row per
call (written in batches by default; see --records) and metrics. Three more sides bound what per-process state could save: the same client with the
rate-limit gate's store replaced by a dict in the process ("no token trip": the best
rate-limit leases could do), the same with the circuit gate's ("no circuit trip": the best
a trusted local copy of a closed circuit could do), and with both ("no store").

Prints, per round, the median per-call time of each side and its ratio to bare, then the
spread of the ratios over the rounds and the CPU time this thread spent per call on each
side (the rest of a difference is waiting: for the shared store, or for a CPU).

    .venv/bin/python bench/client_overhead.py [--calls 1000] [--rounds 5] [--delay-ms 5]
                                              [--records batch|sync|off] [--profile] [--store-trips]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_client_h6 REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/client_overhead.py

Without DATABASE_URL a fresh SQLite file in a temporary directory is used (and migrated;
shared state then lives in database rows); with it, the named database, which must exist
(`createdb -h 127.0.0.1 -U postgres bench_client_h6`); it is migrated and a
`bench-client-overhead` provider is created or updated in it. With REDIS_URL the shared
state is in Redis.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django() -> None:
    if not os.environ.get("DATABASE_URL"):
        tmp = tempfile.mkdtemp(prefix="bench-client-")
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Development settings need no secrets; DEBUG is turned off below (it logs every query).
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


BODY = {"id": "obj_123", "object": "thing", "amount": 1000, "currency": "usd", "status": "succeeded"}


def provider_process(delay: float, conn) -> None:
    """The local provider: answers every request after `delay` seconds, until told to stop."""
    from tests.support.local_server import LocalServer, Reply

    def answer(request):
        time.sleep(delay)
        return Reply(200, json=BODY)

    with LocalServer(answer) as server:
        conn.send(server.url)
        conn.recv()  # anything (or the parent's end closing) stops it


class MemoryStore:
    """The shared store's interface on a dict in this process (the "no store" side)."""

    name = "memory"

    def __init__(self):
        self.values: dict = {}

    def get(self, key):
        return self.values.get(key)

    def update(self, key, fn, ttl):
        from integrations.shared_state import KEEP

        new, result = fn(self.values.get(key))
        if new is not KEEP:
            self.values[key] = new
        return result

    def add(self, key, value, ttl):
        return self.values.setdefault(key, value) is value

    def delete(self, key):
        self.values.pop(key, None)

    def take_token(self, key, *, capacity, rate, now, ttl):
        from integrations.shared_state import _take_token

        self.values[key], wait = _take_token(self.values.get(key), capacity, rate, now)
        return wait


def start_provider(delay: float):
    """(the provider's URL, a function that stops it), forked before Django opens connections."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=provider_process, args=(delay, theirs), daemon=True)
    process.start()
    url = ours.recv()

    def stop():
        ours.send("stop")
        process.join(timeout=5)
        if process.is_alive():
            process.kill()

    return url, stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per side and round (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="repeat the measurement (default 5)")
    parser.add_argument("--delay-ms", type=float, default=5.0, help="the provider's answer time (default 5)")
    parser.add_argument("--records", choices=["sync", "batch", "off"], default="batch",
                        help="INTEGRATIONS_RECORD_CALLS for the client (default: batch)")
    parser.add_argument("--profile", action="store_true", help="print where the client's time goes")
    parser.add_argument("--store-trips", action="store_true",
                        help="time two shared-store reads back to back and after a provider-long pause")
    args = parser.parse_args()
    provider_url, stop_provider = start_provider(args.delay_ms / 1000)
    try:
        setup_django()
        return measure(args, provider_url)
    finally:
        stop_provider()


def measure(args, provider_url: str) -> int:
    import requests
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection

    from integrations import circuit, shared_state
    from integrations.client import ProviderClient
    from integrations.client import core as client_core
    from integrations.credentials import credential_rotate
    from integrations.models import Provider

    settings.DEBUG = False
    settings.INTEGRATIONS_RECORD_CALLS = {"sync": True, "batch": "batch", "off": False}[args.records]
    # "Logging on": the JSON formatter of the project, into /dev/null (formatting is the cost).
    devnull = logging.FileHandler(os.devnull)
    devnull.setFormatter(logging.getLogger().handlers[0].formatter if logging.getLogger().handlers else None)
    outbound = logging.getLogger("integrations.outbound")
    outbound.handlers, outbound.propagate = [devnull], False
    outbound.setLevel(logging.INFO)

    provider, _ = Provider.objects.update_or_create(
        slug="bench-client-overhead",
        defaults={"name": "Benchmark", "kind": "sandbox", "base_url": provider_url,
                  "rate_limit_requests": 1_000_000, "rate_limit_period": 1.0,
                  "circuit_failure_threshold": 5, "max_attempts": 3},
    )
    credential_rotate(provider=provider, purpose="api_key", value="sk_bench_key")
    client = ProviderClient(provider)
    cache.clear()
    bare = requests.Session()
    headers = {"Authorization": "Bearer sk_bench_key", "Accept": "application/json"}
    url = provider_url + "/v1/things/obj_123"

    def bare_call():
        response = bare.get(url, headers=headers, timeout=(3.05, 10))
        response.raise_for_status()
        return response.json()

    def client_call():
        result = client.request("GET", "/v1/things/obj_123", operation="thing.get")
        assert result.ok, result
        return result.data

    real_store, memory = shared_state.store, MemoryStore()

    def in_memory(fn):
        """`fn` with the shared store replaced by this process's dict while it runs."""
        def wrapped(**kwargs):
            shared_state.store = lambda: memory
            try:
                return fn(**kwargs)
            finally:
                shared_state.store = real_store

        return wrapped

    def patched(target, name, replacement):
        """client_call with `target.name` replaced while it runs."""
        def call():
            original = getattr(target, name)
            setattr(target, name, replacement)
            try:
                return client_call()
            finally:
                setattr(target, name, original)

        return call

    # The best any per-process state could do, one gate at a time and both together: no
    # round trip for the rate-limit token (leases), for the circuit (a trusted local copy),
    # or for either.
    no_token_trip = patched(client_core, "rate_limit_permit", in_memory(client_core.rate_limit_permit))
    no_circuit_trip = patched(circuit, "circuit_permit", in_memory(circuit.circuit_permit))
    no_store_call = patched(shared_state, "store", lambda: memory)

    sides = {"bare": bare_call, "client": client_call, "no token trip": no_token_trip,
             "no circuit trip": no_circuit_trip, "no store": no_store_call}
    for _ in range(100):  # warm up the connection pools, caches, the database
        for call in sides.values():
            call()

    if args.store_trips:
        # What a pair of round trips costs when it follows a wait, as in a call, against the
        # same pair back to back: the difference is the machine waking the process up again.
        store = shared_state.store()
        for pause in (0.0, args.delay_ms / 1000):
            wall = cpu = 0.0
            for _ in range(args.calls):
                if pause:
                    time.sleep(pause)
                started, started_cpu = time.perf_counter(), time.thread_time()
                store.get("circuit:bench-client-overhead")
                store.get("circuit:bench-client-overhead")
                wall += time.perf_counter() - started
                cpu += time.thread_time() - started_cpu
            print(f"store={store.name} two reads after a {pause * 1000:g} ms pause: "
                  f"{wall / args.calls * 1e6:.0f} us wall, {cpu / args.calls * 1e6:.0f} us CPU")
        return 0

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.calls):
            client_call()
        profiler.disable()
        if os.environ.get("BENCH_PROFILE_OUT"):
            profiler.dump_stats(os.environ["BENCH_PROFILE_OUT"])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        return 0

    order = list(sides)
    print(f"database={connection.vendor} shared-state={shared_state.store().name} records={args.records} "
          f"provider={args.delay_ms:g} ms calls={args.calls} rounds={args.rounds}")
    print("round  " + "  ".join(f"{name:>15}" for name in sides) + "   (median us per call; ratio to bare)")
    ratios = {name: [] for name in sides if name != "bare"}
    cpu = dict.fromkeys(sides, 0.0)
    for round_ in range(1, args.rounds + 1):
        # Interleaved call by call, each side first in turn, so all see the same machine noise.
        times = {name: [] for name in sides}
        for i in range(args.calls):
            for name in order[i % len(order):] + order[:i % len(order)]:
                started, started_cpu = time.perf_counter(), time.thread_time()
                sides[name]()
                times[name].append(time.perf_counter() - started)
                cpu[name] += time.thread_time() - started_cpu
        med = {name: statistics.median(values) * 1e6 for name, values in times.items()}
        for name in ratios:
            ratios[name].append(med[name] / med["bare"])
        print(f"{round_:5d}  {med['bare']:15.0f}  " + "  ".join(
            f"{med[name]:7.0f} {ratios[name][-1]:6.3f}x" for name in ratios))
    calls = args.calls * args.rounds
    for name, values in ratios.items():
        print(f"{name}/bare: median {statistics.median(values):.3f}x  min {min(values):.3f}x  "
              f"max {max(values):.3f}x")
    # CPU time of this thread: the rest of a difference is waiting (for the store, or for a CPU).
    print("CPU per call: " + ", ".join(f"{name} {cpu[name] / calls * 1e6:.0f} us" for name in sides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
