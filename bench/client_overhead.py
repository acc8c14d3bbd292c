#!/usr/bin/env python
"""Per-call overhead of the outbound client against a bare requests.Session.

The same GETs against one local loopback server, alternating bare / client call by call
so both see the same machine noise. The client runs with everything on: circuit breaker,
shared rate limit (a limit too high to wait), one JSON log line per attempt (formatted and
written to /dev/null), an OutboundCall row per call (written in batches by default; see
--records) and metrics. Prints the median per-call
time of each and their ratio.

    .venv/bin/python bench/client_overhead.py [--calls 2000] [--records batch|sync|off] [--profile]
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
    parser.add_argument("--records", choices=["sync", "batch", "off"], default="batch",
                        help="INTEGRATIONS_RECORD_CALLS for the client (default: batch)")
    parser.add_argument("--profile", action="store_true", help="print where the client's time goes")
    args = parser.parse_args()
    setup_django()

    import requests
    from django.conf import settings
    from django.core.cache import cache

    from integrations.client import ProviderClient
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

    body = {"id": "obj_123", "object": "thing", "amount": 1000, "currency": "usd", "status": "succeeded"}
    with LocalServer(lambda r: Reply(200, json=body)) as server:
        provider, _ = Provider.objects.update_or_create(
            slug="bench-client-overhead",
            defaults={"name": "Benchmark", "kind": "sandbox", "base_url": server.url,
                      "rate_limit_requests": 1_000_000, "rate_limit_period": 1.0,
                      "circuit_failure_threshold": 5, "max_attempts": 3},
        )
        credential_rotate(provider=provider, purpose="api_key", value="sk_bench_key")
        cache.clear()
        client = ProviderClient(provider)
        bare = requests.Session()
        headers = {"Authorization": "Bearer sk_bench_key", "Accept": "application/json"}
        url = server.url + "/v1/things/obj_123"

        def bare_call():
            response = bare.get(url, headers=headers, timeout=(3.05, 10))
            response.raise_for_status()
            return response.json()

        def client_call():
            result = client.request("GET", "/v1/things/obj_123", operation="thing.get")
            assert result.ok, result
            return result.data

        for _ in range(100):  # warm up both connection pools, caches, the database
            bare_call()
            client_call()

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.calls):
                client_call()
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
            return 0

        bare_times, client_times = [], []
        for _ in range(args.calls):
            started = time.perf_counter()
            bare_call()
            bare_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            client_call()
            client_times.append(time.perf_counter() - started)

    from django.db import connection

    bare_median = statistics.median(bare_times) * 1e6
    client_median = statistics.median(client_times) * 1e6
    store = "redis" if settings.CACHES["default"]["BACKEND"].endswith("RedisCache") else "database"
    print(f"database={connection.vendor} shared-state={store} records={args.records} "
          f"calls={args.calls}")
    print(f"bare requests.Session  median {bare_median:8.1f} us/call")
    print(f"ProviderClient         median {client_median:8.1f} us/call")
    print(f"ratio (client / bare)  {client_median / bare_median:.2f}x   overhead {client_median - bare_median:.1f} us/call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
