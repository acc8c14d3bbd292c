#!/usr/bin/env python
"""Cost of the idempotency layer, measured side by side in one run, same app and database.

    .venv/bin/python bench/idempotency.py [--rounds 5] [--requests 200]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/provider_gateway .venv/bin/python bench/idempotency.py

Pairs, interleaved round by round so drift hits both sides alike:
  1. first request: POST /api/v1/charges with a new key (through the layer) vs the same
     view with the layer taken off (`post.__wrapped__`), each charging a fake provider
     that runs in this process on a loopback port, through the real outbound client;
  2. replay: POST with a key already answered vs a bare DRF GET /api/v1/charges/<id>.
Requests go through Django's full stack (middleware, DRF auth) in process: no socket on
the API side, so the ratios show the layer's own cost rather than HTTP noise.
Goals (issue 4): first request <= 1.25x the time without the layer; replay >= 0.8x the
GET's throughput. A throwaway test database is created and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import side_by_side  # noqa: E402 - after the path set-up

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import include, path  # noqa: E402

from payments.views import ChargeListCreate  # noqa: E402


class BareChargeCreate(ChargeListCreate):
    """The same view with the idempotency layer taken off."""

    post = ChargeListCreate.post.__wrapped__


urlpatterns = [
    path("bench/charges", BareChargeCreate.as_view()),
    path("", include("config.urls")),
]

BODY = {"amount": 1500, "currency": "usd", "source": "tok_visa", "description": "bench", "metadata": {"a": "b"}}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    from tests.support.fake_provider import FakeProvider

    db = settings.DATABASES["default"]
    db.setdefault("TEST", {})
    db["TEST"]["NAME"] = (str(ROOT / "var" / "bench_idempotency.sqlite3") if db["ENGINE"].endswith("sqlite3")
                          else f"bench_idempotency_{os.getpid()}")
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    fake = FakeProvider()
    fake.start()
    try:
        with override_settings(ROOT_URLCONF=__name__, DEBUG=False):
            return run(args, fake)
    finally:
        fake.stop()
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args, fake) -> int:
    from api.models import api_key_create
    from integrations.credentials import credential_rotate
    from integrations.models import Provider

    provider = Provider.objects.create(slug="bench", name="Bench", kind="sandbox", base_url=fake.base_url,
                                       rate_limit_requests=10**9, max_attempts=1)
    credential_rotate(provider=provider, purpose="api_key", value="sk_bench_only")
    _, raw = api_key_create(consumer_name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = json.dumps(BODY)

    def post(url: str, key: str):
        response = client.post(url, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
        assert response.status_code == 201, response.content
        return response

    charge = post("/api/v1/charges", "replayed-key").json()

    def with_layer(i):
        post("/api/v1/charges", uuid.uuid4().hex)

    def without_layer(i):
        post("/bench/charges", uuid.uuid4().hex)

    def replay(i):
        assert post("/api/v1/charges", "replayed-key")["Idempotent-Replayed"] == "true"

    def bare_get(i):
        assert client.get(f"/api/v1/charges/{charge['id']}").status_code == 200

    side_by_side(with_layer, without_layer, 20)  # warm up connections and caches
    side_by_side(replay, bare_get, 20)
    first_ratios, replay_ratios = [], []
    totals = {"layer": 0.0, "bare": 0.0, "replay": 0.0, "get": 0.0}
    for _ in range(args.rounds):
        layer, bare = side_by_side(with_layer, without_layer, args.requests)
        rep, get = side_by_side(replay, bare_get, args.requests)
        first_ratios.append(layer / bare)  # time with the layer / time without
        replay_ratios.append(get / rep)  # replay throughput / GET throughput
        for name, value in (("layer", layer), ("bare", bare), ("replay", rep), ("get", get)):
            totals[name] += value

    n = args.rounds * args.requests
    rate = {name: n / seconds for name, seconds in totals.items()}
    first, rep = statistics.median(first_ratios), statistics.median(replay_ratios)
    print(f"database: {connection.vendor}; {args.rounds} rounds x {args.requests} requests per side")
    print(f"POST new key, with layer     {rate['layer']:8.1f} req/s  {1000 / rate['layer']:6.2f} ms")
    print(f"POST new key, without layer  {rate['bare']:8.1f} req/s  {1000 / rate['bare']:6.2f} ms")
    print(f"  time ratio with/without (median of rounds): {first:.3f}x  "
          f"rounds: {', '.join(f'{r:.3f}' for r in first_ratios)}  goal <= 1.25x: {'OK' if first <= 1.25 else 'MISSED'}")
    print(f"POST replayed key            {rate['replay']:8.1f} req/s  {1000 / rate['replay']:6.2f} ms")
    print(f"GET charge by id             {rate['get']:8.1f} req/s  {1000 / rate['get']:6.2f} ms")
    print(f"  throughput ratio replay/GET (median of rounds): {rep:.3f}x  "
          f"rounds: {', '.join(f'{r:.3f}' for r in replay_ratios)}  goal >= 0.8x: {'OK' if rep >= 0.8 else 'MISSED'}")
    return 0 if first <= 1.25 and rep >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
