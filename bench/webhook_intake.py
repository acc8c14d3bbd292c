#!/usr/bin/env python
"""Webhook intake throughput and latency against a bare insert view, plus worker rates.

    .venv/bin/python bench/webhook_intake.py [--requests 400] [--rounds 10] [--concurrency 8]
                                             [--events 1000]

Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis on 127.0.0.1:6379; creates and
drops its own database (pgw_bench_webhooks) and uses Redis db 2.

1. Intake: gunicorn with 2 sync workers (DEBUG off) serves the real app with its default
   settings; a second one serves it with the verification cache off
   (WEBHOOK_VERIFY_CACHE_SECONDS=0, see webhooks/verify_cache.py). A load
   generator in this process sends, at a fixed concurrency over loopback, signed Standard
   Webhooks deliveries (pre-signed, each a new event id) to /webhooks/bench/ and the same
   bodies to a bare Django view that inserts one row (bench/webhook_intake_app.py). Rounds
   alternate bare / intake / intake without the cache, so drift hits all three; each round
   is bounded by a request count and a time. This machine's speed drifts by ±20 % from
   minute to minute (a shared VM), so there are many short rounds, and the throughput
   ratio reported is the median of the per-round ratios (each intake round against the
   bare round just before it), with their range; totals are shown too.
   Reported: throughput, p50, p99 (over all rounds), the ratios, and the CPU time per
   request of each process group (gunicorn, PostgreSQL, Redis, the load generator).
   Goals (issue 5): intake >= 0.7x the bare throughput, p99 <= 2x the bare p99.
2. Workers: N charge.succeeded events (each for its own charge) are enqueued, then
   `manage.py qcluster` (2 workers) processes them, once with the ORM broker and once with
   Redis. Reported: events per second between the first and the last processed event.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
BIN = Path(PY).parent
PG = "postgres://postgres@127.0.0.1:5432"
DB = "pgw_bench_webhooks"
REDIS = "redis://127.0.0.1:6379/2"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def bench_env(*, redis: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({
        "DATABASE_URL": f"{PG}/{DB}", "DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": os.environ.get("BENCH_FIELD_KEY") or Fernet.generate_key().decode(),
        "LOG_LEVEL": "WARNING", "Q_WORKERS": "2", "PYTHONUNBUFFERED": "1",
    })
    if redis:
        env["REDIS_URL"] = REDIS
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)  # polling a port that is not open yet: nothing to wait on
    raise SystemExit("server did not start")


# --- database and fixtures ----------------------------------------------------------------

def recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")


def drop_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    if "REDIS_URL" not in env:
        os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def setup_fixtures() -> None:
    from django.db import connection

    from integrations.credentials import credential_rotate
    from integrations.models import Provider

    for slug, kind in (("bench", "standard"), ("bench-sandbox", "sandbox")):
        provider = Provider.objects.create(slug=slug, name=slug, kind=kind, base_url="http://127.0.0.1:9")
        credential_rotate(provider=provider, purpose="webhook_secret", value=SECRET)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_bare_insert (id bigserial PRIMARY KEY, body bytea NOT NULL, "
                       "received_at timestamptz NOT NULL)")


# --- load generator ------------------------------------------------------------------------

def make_requests(count: int, prefix: str) -> list[tuple[bytes, dict[str, str]]]:
    from tests.support.webhook_signing import body_of, standard_headers

    requests = []
    for i in range(count):
        msg_id = f"msg_{prefix}_{i}"
        body = body_of({"type": "bench.event", "timestamp": "2026-01-01T00:00:00Z",
                        "data": {"id": msg_id, "object": "thing", "amount": 1234, "note": "x" * 200}})
        headers = standard_headers(body=body, msg_id=msg_id, secret=SECRET)
        headers["Content-Type"] = "application/json"
        requests.append((body, headers))
    return requests


def load(port: int, path: str, requests, concurrency: int, max_seconds: float) -> dict:
    """Send `requests` with `concurrency` threads; stop early after max_seconds."""
    latencies, errors, lock = [], [], threading.Lock()
    index = iter(range(len(requests)))
    deadline = time.monotonic() + max_seconds

    def worker():
        while time.monotonic() < deadline:
            with lock:
                i = next(index, None)
            if i is None:
                return
            body, headers = requests[i]
            started = time.perf_counter()
            conn = HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError as err:
                ok, response = False, err
            finally:
                conn.close()
            elapsed = time.perf_counter() - started
            with lock:
                (latencies if ok else errors).append(elapsed if ok else str(getattr(response, "status", response)))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"ok": len(latencies), "errors": len(errors), "first_errors": errors[:3], "wall": wall,
            "latencies": latencies}


# --- CPU time by process group (Linux /proc), to see where a request's cost lands -----------

def _cpu_seconds_by_group(server_pids: set[int]) -> dict[str, float]:
    """utime + stime so far of: the gunicorn servers' processes (`server_pids` and their
    children), PostgreSQL's, Redis's, and this process (the load generator)."""
    tick = os.sysconf("SC_CLK_TCK")
    groups = {"app": 0.0, "postgres": 0.0, "redis": 0.0, "loadgen": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone in between
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        ppid, cpu = int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
        pid = int(entry)
        if pid == os.getpid():
            groups["loadgen"] += cpu
        elif pid in server_pids or ppid in server_pids:
            groups["app"] += cpu
        elif name.startswith("postgres"):
            groups["postgres"] += cpu
        elif name.startswith("redis-server"):
            groups["redis"] += cpu
    return groups


def summary(results: list[dict]) -> dict:
    latencies = sorted(x for r in results for x in r["latencies"])
    ok = sum(r["ok"] for r in results)
    wall = sum(r["wall"] for r in results)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    cpu = {group: sum(r["cpu"][group] for r in results) * 1000 / ok for group in results[0]["cpu"]} if ok else {}
    return {"requests": ok, "errors": sum(r["errors"] for r in results), "rps": ok / wall,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "cpu_ms": cpu,
            "round_rps": [r["ok"] / r["wall"] for r in results]}


def round_ratios(target: dict, bare: dict) -> list[float]:
    """Each round's throughput against the bare round run just before it."""
    return [t / b for t, b in zip(target["round_rps"], bare["round_rps"], strict=True)]


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "bench.webhook_intake_app:application"],
        cwd=ROOT, env=env, start_new_session=True)
    wait_port(port, server)
    return server, port


def intake_phase(args) -> dict:
    env = bench_env(redis=True)
    servers = []
    try:
        servers.append(start_server(env))
        # A second server with the verification cache off, idle while the first one is
        # measured and the other way round.
        servers.append(start_server({**env, "BENCH_WEBHOOK_VERIFY_CACHE_SECONDS": "0"}))
        (_, port), (_, uncached_port) = servers
        server_pids = {server.pid for server, _ in servers}
        targets = {"bare": (port, "/bench/bare-insert/"), "intake": (port, "/webhooks/bench/"),
                   "intake_uncached": (uncached_port, "/webhooks/bench/")}
        # Warm every path (imports, connections) before measuring.
        for name, (p, path) in targets.items():
            load(p, path, make_requests(50, f"warm-{name}"), args.concurrency, 30)
        results = {name: [] for name in targets}
        for round_ in range(args.rounds):
            for name, (p, path) in targets.items():
                reqs = make_requests(args.requests, f"r{round_}-{name}")
                before = _cpu_seconds_by_group(server_pids)
                result = load(p, path, reqs, args.concurrency, args.max_seconds)
                after = _cpu_seconds_by_group(server_pids)
                result["cpu"] = {group: after[group] - before[group] for group in before}
                if result["errors"]:
                    raise SystemExit(f"{result['errors']} requests failed, e.g. {result['first_errors']}")
                results[name].append(result)
        return {name: summary(r) for name, r in results.items()}
    finally:
        for server, _ in servers:
            server.send_signal(signal.SIGTERM)  # gunicorn's arbiter stops its workers
            server.wait(timeout=30)


# --- worker phase (a subprocess per broker, so django-q2 reads its own config) ------------

def worker_phase(events: int) -> dict:
    from django.db.models import Max, Min
    from django_q.brokers import get_broker
    from django_q.tasks import async_task

    from api.models import Consumer
    from integrations.models import Provider
    from payments.models import Charge
    from webhooks.models import EventStatus, WebhookEvent

    provider = Provider.objects.get(slug="bench-sandbox")
    consumer, _ = Consumer.objects.get_or_create(name="bench")
    tag = secrets.token_hex(4)
    Charge.objects.bulk_create([
        Charge(consumer=consumer, provider=provider, amount=1000, currency="usd", source="tok_visa",
               provider_charge_id=f"pc_{tag}_{i}", outbound_idempotency_key=f"bench-{tag}-{i}")
        for i in range(events)])
    rows = WebhookEvent.objects.bulk_create([
        WebhookEvent(provider=provider, event_id=f"evt_{tag}_{i}", type="charge.succeeded", raw_body=b"{}",
                     payload={"id": f"evt_{tag}_{i}", "type": "charge.succeeded",
                              "data": {"object": {"id": f"pc_{tag}_{i}", "amount": 1000}}})
        for i in range(events)])
    pks = [r.pk for r in rows] if rows[0].pk else list(
        WebhookEvent.objects.filter(event_id__startswith=f"evt_{tag}_").values_list("pk", flat=True))
    get_broker().purge_queue()
    for pk in pks:
        async_task("webhooks.tasks.process_event", pk, request_id=None)
    cluster = subprocess.Popen([PY, "manage.py", "qcluster"], cwd=ROOT, env=dict(os.environ),
                               stdout=subprocess.DEVNULL, start_new_session=True)
    started = time.monotonic()
    mine = WebhookEvent.objects.filter(pk__in=pks)
    try:
        while mine.exclude(status=EventStatus.PROCESSED).exists():
            if time.monotonic() - started > 300:
                raise SystemExit("workers did not finish within 300 s")
            time.sleep(0.2)  # polling the database for the end of an external process
    finally:
        cluster.send_signal(signal.SIGINT)  # the main process, not the group (design note)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()
    span = mine.aggregate(first=Min("processed_at"), last=Max("processed_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    return {"events": events, "seconds": seconds, "per_second": (events - 1) / seconds if seconds else 0}


def run_worker_phase(broker: str, events: int, base_env: dict[str, str]) -> dict:
    env = {**base_env}
    if broker == "redis":
        env["REDIS_URL"] = REDIS
    else:
        env.pop("REDIS_URL", None)
    out = subprocess.run([PY, __file__, "--phase", "worker", "--events", str(events)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per target per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="time bound of one round")
    parser.add_argument("--events", type=int, default=1000, help="events for each worker measurement")
    parser.add_argument("--phase", choices=["all", "worker"], default="all", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "worker":
        django_setup(dict(os.environ))
        print(json.dumps(worker_phase(args.events)))
        return

    env = bench_env(redis=True)
    # One key and secret for this run's processes, so they all read the same credentials.
    os.environ["BENCH_FIELD_KEY"], os.environ["BENCH_SECRET_KEY"] = env["FIELD_ENCRYPTION_KEYS"], env["DJANGO_SECRET_KEY"]
    recreate_database()
    try:
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        django_setup(env)
        setup_fixtures()
        intake = intake_phase(args)
        orm = run_worker_phase("orm", args.events, env)
        redis = run_worker_phase("redis", args.events, env)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database()

    b, i, c = intake["bare"], intake["intake"], intake["intake_uncached"]
    print(f"\nconcurrency {args.concurrency}, {args.rounds} rounds x {args.requests} requests per target, "
          f"gunicorn 2 sync workers, PostgreSQL, Redis broker, {os.cpu_count()} CPUs\n")
    print("| target | requests | errors | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, s in (("bare insert view", b), ("webhook intake (default settings)", i),
                    ("webhook intake, WEBHOOK_VERIFY_CACHE_SECONDS=0", c)):
        print(f"| {name} | {s['requests']} | {s['errors']} | {s['rps']:.0f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} |")
    print("\nCPU time per request (ms), by process group: the app's gunicorn workers, PostgreSQL, Redis,"
          " and the load generator (this process)\n")
    print("| target | app | postgres | redis | loadgen | total |")
    print("|---|---|---|---|---|---|")
    for name, s in (("bare insert view", b), ("webhook intake (default settings)", i),
                    ("webhook intake, cache off", c)):
        cpu = s["cpu_ms"]
        print(f"| {name} | {cpu['app']:.2f} | {cpu['postgres']:.2f} | {cpu['redis']:.2f} | {cpu['loadgen']:.2f} "
              f"| {sum(cpu.values()):.2f} |")
    for name, s in (("default", i), ("cache off", c)):
        ratios = round_ratios(s, b)
        print(f"\nintake ({name}) / bare: throughput {statistics.median(ratios):.2f}x median of {len(ratios)} "
              f"rounds (range {min(ratios):.2f}-{max(ratios):.2f}; totals {s['rps'] / b['rps']:.2f}x; goal >= 0.7x), "
              f"p99 {s['p99_ms'] / b['p99_ms']:.2f}x (goal <= 2x)")
    print("\n| worker broker | events | seconds | events/s |")
    print("|---|---|---|---|")
    for name, w in (("ORM", orm), ("Redis", redis)):
        print(f"| {name} | {w['events']} | {w['seconds']:.1f} | {w['per_second']:.0f} |")


if __name__ == "__main__":
    main()
