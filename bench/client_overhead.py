#!/usr/bin/env python
"""Per-call overhead of the outbound client against a bare requests.Session.

The same GETs against one local loopback server, alternating call by call between a bare
session, the client in "exact" mode (no rate-limit leases, circuit read on every attempt:
the behaviour before local state, kept as settings) and the client with its defaults
("local": leased tokens, a 100 ms local copy of a closed circuit), so all three see the
same machine noise. The client runs with everything on: circuit breaker, shared rate limit
(a limit too high to wait), one JSON log line per attempt (formatted and written to
/dev/null), an OutboundCall row per call (written in batches by default; see --records)
and metrics. Prints, per round, the median per-call time of each and the ratios, then the
spread of the ratios over the rounds.

    .venv/bin/python bench/client_overhead.py [--calls 2000] [--rounds 3] [--records batch|sync|off] [--profile]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_client_overhead_a REDIS_URL=redis://127.0.0.1:6379/1 \
        .venv/bin/python bench/client_overhead.py

Without DATABASE_URL a fresh SQLite file in a temporary directory is used (and migrated);
with it, the named database, which must exist (`createdb -h 127.0.0.1 -U postgres
bench_client_overhead_a`); it is migrated and a `bench-client-overhead` provider is
created or updated in it.
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
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="repeat the measurement (default 3)")
    parser.add_argument("--records", choices=["sync", "batch", "off"], default="batch",
                        help="INTEGRATIONS_RECORD_CALLS for the client (default: batch)")
    parser.add_argument("--profile", action="store_true", help="print where the client's time goes")
    args = parser.parse_args()
    setup_django()

    import requests
    from django.conf import settings
    from django.core.cache import cache

    from integrations.client import ProviderClient
    from integrations.conf import setting
    from integrations.credentials import credential_rotate
    from integrations.models import Provider
    from tests.support.local_server import LocalServer, Reply

    settings.INTEGRATIONS_RECORD_CALLS = {"sync": True, "batch": "batch", "off": False}[args.records]
    # "Logging on": the JSON formatter of the project, into /dev/null (formatting is the cost).
    devnull = logging.FileHandler(os.devnull)
    devnull.setFormatter(logging.getLogger().handlers[0].formatter if logging.getLogger().handlers else None)
    outbound = logging.getLogger("integrations.outbound")
    outbound.handlers, outbound.propagate = [devnull], False
    outbound.setLevel(logging.INFO)

    # The "exact" client is the previous behaviour, kept as a setting: no rate-limit leases
    # (one token per shared round trip) and no local circuit copy (read on every attempt).
    local_settings = {name: setting(name) for name in
                      ("INTEGRATIONS_RATE_LIMIT_LEASE_MAX", "INTEGRATIONS_CIRCUIT_LOCAL_SECONDS")}
    exact_settings = {"INTEGRATIONS_RATE_LIMIT_LEASE_MAX": 1, "INTEGRATIONS_CIRCUIT_LOCAL_SECONDS": 0}

    def use(values):
        for name, value in values.items():
            setattr(settings, name, value)

    body = {"id": "obj_123", "object": "thing", "amount": 1000, "currency": "usd", "status": "succeeded"}
    with LocalServer(lambda r: Reply(200, json=body)) as server:
        clients = {}
        for name in ("local", "exact"):
            provider, _ = Provider.objects.update_or_create(
                slug=f"bench-client-overhead-{name}",
                defaults={"name": "Benchmark", "kind": "sandbox", "base_url": server.url,
                          "rate_limit_requests": 1_000_000, "rate_limit_period": 1.0,
                          "circuit_failure_threshold": 5, "max_attempts": 3},
            )
            credential_rotate(provider=provider, purpose="api_key", value="sk_bench_key")
            clients[name] = ProviderClient(provider)
        cache.clear()
        bare = requests.Session()
        headers = {"Authorization": "Bearer sk_bench_key", "Accept": "application/json"}
        url = server.url + "/v1/things/obj_123"

        def bare_call():
            response = bare.get(url, headers=headers, timeout=(3.05, 10))
            response.raise_for_status()
            return response.json()

        def client_call(name):
            result = clients[name].request("GET", "/v1/things/obj_123", operation="thing.get")
            assert result.ok, result
            return result.data

        for _ in range(100):  # warm up the connection pools, caches, the database
            bare_call()
            use(exact_settings)
            client_call("exact")
            use(local_settings)
            client_call("local")

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.calls):
                client_call("local")
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
            return 0

        from django.db import connection

        store = "redis" if settings.CACHES["default"]["BACKEND"].endswith("RedisCache") else "database"
        print(f"database={connection.vendor} shared-state={store} records={args.records} "
              f"calls={args.calls} rounds={args.rounds}")
        print("round  bare us  exact us  local us  exact/bare  local/bare")
        ratios = {"exact": [], "local": []}
        for round_ in range(1, args.rounds + 1):
            # Call by call: bare, exact, local, so all three see the same machine noise.
            times = {"bare": [], "exact": [], "local": []}
            for _ in range(args.calls):
                started = time.perf_counter()
                bare_call()
                times["bare"].append(time.perf_counter() - started)
                use(exact_settings)
                started = time.perf_counter()
                client_call("exact")
                times["exact"].append(time.perf_counter() - started)
                use(local_settings)
                started = time.perf_counter()
                client_call("local")
                times["local"].append(time.perf_counter() - started)
            medians = {k: statistics.median(v) * 1e6 for k, v in times.items()}
            for name in ratios:
                ratios[name].append(medians[name] / medians["bare"])
            print(f"{round_:5d}  {medians['bare']:7.1f}  {medians['exact']:8.1f}  {medians['local']:8.1f}"
                  f"  {ratios['exact'][-1]:9.2f}x  {ratios['local'][-1]:9.2f}x")
        for name in ("exact", "local"):
            values = ratios[name]
            print(f"{name}/bare: median {statistics.median(values):.2f}x  "
                  f"min {min(values):.2f}x  max {max(values):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
