#!/usr/bin/env python
"""Address verification: a cached verify against a bare GET by id, and batch throughput.

    .venv/bin/python bench/addresses.py [--rounds 5] [--requests 300] [--batch 2000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/provider_gateway REDIS_URL=redis://127.0.0.1:6379/6 \
        .venv/bin/python bench/addresses.py

1. GET /api/v1/addresses/verify answered from the cache vs GET /api/v1/charges/<id> (a bare
   DRF GET by id), interleaved round by round, through Django's full stack in process (no
   socket on the API side), same database and cache. Goal (issue 13): >= 0.8x its throughput.
2. A batch job of `--batch` distinct addresses, run by `batch_run` (what the django-q2 task
   calls) with the rate limit lifted, vs a bare loop calling the sandbox's /search with
   `requests` (one Session), both against the same sandbox on a loopback port.
A throwaway test database is created and dropped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import side_by_side  # noqa: E402 - after the path set-up

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

API_KEY = "sk_bench_only"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()

    from sandbox.api import Sandbox, SandboxConfig
    from sandbox.server import SandboxServer

    db = settings.DATABASES["default"]
    db.setdefault("TEST", {})
    db["TEST"]["NAME"] = (str(ROOT / "var" / "bench_addresses.sqlite3") if db["ENGINE"].endswith("sqlite3")
                          else f"bench_addresses_{os.getpid()}")
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    server = SandboxServer(Sandbox(SandboxConfig(api_key=API_KEY)), port=0).start()
    try:
        cache.clear()
        # Outbound call records as in production (a background writer), except on SQLite, whose
        # single writer lock that thread would fight for (development records synchronously).
        records = "sync" if connection.vendor == "sqlite" else "batch"
        with override_settings(DEBUG=False, INTEGRATIONS_RECORD_CALLS=records):
            return run(args, server.url)
    finally:
        server.stop()
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args, sandbox_url: str) -> int:
    from django.utils import timezone

    from addresses import services
    from api.models import Consumer, api_key_create
    from integrations.credentials import credential_rotate
    from integrations.models import Provider
    from payments.models import Charge

    provider = Provider.objects.create(slug="bench", name="Bench", kind="sandbox", base_url=sandbox_url,
                                       rate_limit_requests=10**9, max_attempts=1, cache_ttl=7 * 24 * 3600)
    credential_rotate(provider=provider, purpose="api_key", value=API_KEY)
    _, raw = api_key_create(consumer_name="bench")
    consumer = Consumer.objects.get(name="bench")
    charge = Charge.objects.create(consumer=consumer, provider=provider, amount=100, currency="usd",
                                   status="succeeded", source="tok_visa", created=timezone.now())
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def cached_verify(i):
        response = client.get("/api/v1/addresses/verify", {"address": "10 Downing Street, London"})
        assert response.status_code == 200 and response.json()["cached"], response.content

    def bare_get(i):
        assert client.get(f"/api/v1/charges/{charge.id}").status_code == 200

    client.get("/api/v1/addresses/verify", {"address": "10 Downing Street, London"})  # fills the cache
    side_by_side(cached_verify, bare_get, 30)  # warm up
    ratios, totals = [], {"verify": 0.0, "get": 0.0}
    for _ in range(args.rounds):
        verify, get = side_by_side(cached_verify, bare_get, args.requests)
        ratios.append(get / verify)  # verify throughput / GET throughput
        totals["verify"] += verify
        totals["get"] += get
    n = args.rounds * args.requests
    rate = {name: n / seconds for name, seconds in totals.items()}
    ratio = statistics.median(ratios)
    print(f"database: {connection.vendor}; cache: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}; "
          f"outbound call records: {settings.INTEGRATIONS_RECORD_CALLS}; "
          f"{args.rounds} rounds x {args.requests} requests per side")
    print(f"GET verify, cached           {rate['verify']:8.1f} req/s  {1000 / rate['verify']:6.2f} ms")
    print(f"GET charge by id (bare DRF)  {rate['get']:8.1f} req/s  {1000 / rate['get']:6.2f} ms")
    print(f"  throughput ratio verify/GET (median of rounds): {ratio:.3f}x  "
          f"rounds: {', '.join(f'{r:.3f}' for r in ratios)}  goal >= 0.8x: {'OK' if ratio >= 0.8 else 'MISSED'}")

    # --- batch throughput -----------------------------------------------------------------
    addresses = [f"{n} Test Street, Testville" for n in range(1, args.batch + 1)]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {API_KEY}"
    started = time.perf_counter()
    for address in addresses:
        answer = session.get(f"{sandbox_url}/search", timeout=10,
                             params={"format": "jsonv2", "addressdetails": "1", "limit": "1", "q": address})
        assert answer.status_code == 200
    bare = time.perf_counter() - started

    job = services.batch_create(consumer=consumer, provider=provider,
                                addresses=[a.replace("Street", "Road") for a in addresses])  # not cached
    started = time.perf_counter()
    job = services.batch_run(job_id=job.id)
    batch = time.perf_counter() - started
    assert job.status == "completed" and job.done == args.batch, job

    job = services.batch_create(consumer=consumer, provider=provider, addresses=addresses[: args.batch // 2] * 2)
    started = time.perf_counter()
    job = services.batch_run(job_id=job.id)  # every lookup now a cache hit (the loop above did not fill it)
    cached_batch = time.perf_counter() - started

    print(f"bare loop, requests -> sandbox /search   {args.batch / bare:8.1f} addresses/s")
    print(f"batch job, {args.batch} distinct, all misses  {args.batch / batch:8.1f} addresses/s  "
          f"({batch / bare:.2f}x the bare loop's time)")
    print(f"batch job, {args.batch} lines, 50% repeats      {args.batch / cached_batch:8.1f} addresses/s")
    return 0 if ratio >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
