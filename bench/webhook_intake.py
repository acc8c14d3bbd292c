#!/usr/bin/env python
"""Webhook intake against bare insert views; stored-to-worker latency; background drain rate.

    .venv/bin/python bench/webhook_intake.py [--requests 400] [--rounds 10] [--concurrency 8]
                                             [--latency-events 300] [--load-requests 3000]
                                             [--events 1000] [--drain-rounds 3] [--brokers redis,orm]

Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis on 127.0.0.1:6379; creates and
drops its own database (pgw_bench_h5, or $BENCH_DB) and uses Redis db 13 (or $BENCH_REDIS_DB),
so runs side by side need their own. All phases in one run:

1. Intake: two gunicorns with 2 sync workers each (DEBUG off, PostgreSQL, Redis cache):
   one serves the real app with the service's middleware, plus a bare view that INSERTs
   the body as one row; the other serves the same bare view with no middleware at all
   (bench/webhook_intake_app.py); a third serves the intake with one change (--what-if:
   only the request-id middleware, or Django's server_side_binding option). A load generator in
   this process sends, at a fixed concurrency over loopback, pre-signed Standard Webhooks
   deliveries (a new event id each) to /webhooks/bench/ and the same bodies to the bare
   views. Rounds alternate bare (no middleware) / bare (service middleware) / intake /
   what-if, so machine drift hits all of them; the throughput ratio is the median of per-round ratios against the bare round
   just before, p99 over all rounds. No relay or worker runs here: this is the request
   path alone.
2. Latency from stored to a worker starting on it: `qcluster` (2 workers) and
   `webhook_relay` run; per event, claimed_at (set when a worker starts the attempt)
   minus received_at (set by the intake just before its INSERT). Idle: deliveries one
   at a time, each after the previous one was started. Under load: the intake load
   above (saturating: the backlog grows whenever the intake outruns the workers), and a
   sustained load at --paced-fraction of the intake's measured throughput. Per broker.
3. Drain: N charge.succeeded events (each its own charge) stored unrelayed, then
   `qcluster` (2 workers) and the relay started: events per second from the first claim
   to the last event processed. Against django-q2's own rate for N no-op tasks queued
   beforehand, same settings, same run: first task start to last task stop. The two
   alternate --drain-rounds times; the ratio is the median of per-round ratios. The
   schedules are deleted first: no sweeper runs in either span.
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

from bench.common import free_port, wait_for  # noqa: E402 - after the path set-up

PY = sys.executable
BIN = Path(PY).parent
PG = "postgres://postgres@127.0.0.1:5432"
DB = os.environ.get("BENCH_DB", "pgw_bench_h5")
REDIS = f"redis://127.0.0.1:6379/{os.environ.get('BENCH_REDIS_DB', '13')}"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


# The third server's what-if: (label, environment).
WHAT_IF = {
    "request-id": ("webhook intake, request-id middleware only", {"BENCH_MIDDLEWARE": "request-id"}),
    "server-side-binding": ("webhook intake, server_side_binding on", {"BENCH_SERVER_SIDE_BINDING": "1"}),
}


def noop() -> None:
    """The baseline task of the drain phase."""


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


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    def up():
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    wait_for(up, timeout=timeout, what="the server's port", interval=0.1)


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


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


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
            try:
                status = post(port, path, body, headers)
            except OSError as err:
                status = str(err)
            elapsed = time.perf_counter() - started
            with lock:
                (latencies if status == 200 else errors).append(elapsed if status == 200 else status)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"ok": len(latencies), "errors": len(errors), "first_errors": errors[:3], "wall": wall,
            "latencies": latencies}


def load_paced(port: int, path: str, requests, concurrency: int, rate: float) -> dict:
    """Send `requests` at `rate` per second (request i at start + i/rate), `concurrency`
    at most in flight: a sustained load below the saturation point."""
    lock, index, errors = threading.Lock(), iter(range(len(requests))), []
    start = time.monotonic() + 0.1

    def worker():
        while True:
            with lock:
                i = next(index, None)
            if i is None:
                return
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the schedule, not synchronisation
            status = post(port, path, *requests[i])
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} paced requests failed, e.g. {errors[:3]}")
    return {"ok": len(requests), "wall": time.monotonic() - start}


def quantiles_ms(values: list[float]) -> dict[str, float]:
    q = (statistics.quantiles(sorted(values), n=100, method="inclusive") if len(values) > 1
         else [values[0] if values else 0] * 99)
    return {"p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "max_ms": max(values, default=0) * 1000}


def summary(results: list[dict]) -> dict:
    latencies = [x for r in results for x in r["latencies"]]
    ok = sum(r["ok"] for r in results)
    wall = sum(r["wall"] for r in results)
    return {"requests": ok, "errors": sum(r["errors"] for r in results), "rps": ok / wall,
            **quantiles_ms(latencies), "round_rps": [r["ok"] / r["wall"] for r in results]}


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


def stop(proc: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    """Signal the main process only (qcluster can hang on a group-wide signal)."""
    proc.send_signal(signum)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --- 1. intake ------------------------------------------------------------------------------

def intake_phase(args, servers) -> dict:
    (_, port), (_, bare_port), (_, lean_port) = servers
    targets = {"bare": (bare_port, "/bench/bare-insert/"), "bare_mw": (port, "/bench/bare-insert/"),
               "intake": (port, "/webhooks/bench/"), "intake_lean": (lean_port, "/webhooks/bench/")}
    for name, (p, path) in targets.items():  # warm imports and connections
        load(p, path, make_requests(50, f"warm-{name}"), args.concurrency, 30)
    results = {name: [] for name in targets}
    for round_ in range(args.rounds):
        for name, (p, path) in targets.items():
            result = load(p, path, make_requests(args.requests, f"r{round_}-{name}"), args.concurrency,
                          args.max_seconds)
            if result["errors"]:
                raise SystemExit(f"{result['errors']} requests failed, e.g. {result['first_errors']}")
            results[name].append(result)
    return {name: summary(r) for name, r in results.items()}


# --- 2. stored -> worker latency --------------------------------------------------------------

def start_background(env: dict[str, str]) -> list[tuple[subprocess.Popen, int]]:
    """qcluster and the relay; their output goes to $BENCH_LOG_DIR when set."""
    log_dir = os.environ.get("BENCH_LOG_DIR")
    started = []
    for name, stop_signal in (("qcluster", signal.SIGINT), ("webhook_relay", signal.SIGTERM)):
        out = open(Path(log_dir) / f"{name}.log", "ab") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        started.append((subprocess.Popen([PY, "manage.py", name], cwd=ROOT, env={**env, "LOG_LEVEL": "INFO"},
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True),
                        stop_signal))
    return started


def event_latencies(prefix: str) -> dict:
    """Stored -> worker start (claimed_at - received_at), split at the relay's hand-off."""
    from webhooks.models import WebhookEvent

    rows = list(WebhookEvent.objects.filter(event_id__startswith=prefix)
                .values_list("received_at", "enqueued_at", "claimed_at"))
    assert all(claimed for _, _, claimed in rows), "an event was not started"
    return {"events": len(rows),
            "start": quantiles_ms([(c - r).total_seconds() for r, _, c in rows]),
            "relay": quantiles_ms([(e - r).total_seconds() for r, e, _ in rows]),
            "queue": quantiles_ms([(c - e).total_seconds() for _, e, c in rows])}


def all_started(prefix: str, count: int):
    from webhooks.models import WebhookEvent

    return lambda: WebhookEvent.objects.filter(event_id__startswith=prefix, claimed_at__isnull=False).count() >= count


def latency_phase(args, port: int, broker: str, env: dict[str, str]) -> dict:
    background = start_background(env)
    try:
        warm = make_requests(20, f"lat-warm-{broker}")
        for body, headers in warm:
            post(port, "/webhooks/bench/", body, headers)
        wait_for(all_started(f"msg_lat-warm-{broker}_", len(warm)), timeout=120, what="the cluster to start")
        # Idle: one event at a time, the next once the previous one was started.
        prefix = f"lat-idle-{broker}"
        for i, (body, headers) in enumerate(make_requests(args.latency_events, prefix)):
            assert post(port, "/webhooks/bench/", body, headers) == 200
            wait_for(all_started(f"msg_{prefix}_", i + 1), timeout=30, what="an idle event", interval=0.005)
            time.sleep(0.01)  # pacing, so the relay is asleep in its poll when the next arrives
        idle = event_latencies(f"msg_{prefix}_")
        # Under load: the intake phase's load (saturating: as fast as the app answers), and
        # a sustained load at a fraction of the intake's measured throughput.
        results = {}
        for phase, send in (("saturating", lambda reqs: load(port, "/webhooks/bench/", reqs, args.concurrency, 120)),
                            ("paced", lambda reqs: load_paced(port, "/webhooks/bench/", reqs, args.concurrency,
                                                              args.paced_rps))):
            prefix = f"lat-{phase}-{broker}"
            result = send(make_requests(args.load_requests, prefix))
            wait_for(all_started(f"msg_{prefix}_", result["ok"]), timeout=600, what=f"the {phase} events")
            results[phase] = event_latencies(f"msg_{prefix}_")
            results[phase]["intake_rps"] = result["ok"] / result["wall"]
        return {"idle": idle, **results}
    finally:
        for proc, signum in background:
            stop(proc, signum)


# --- 3. drain (a subprocess per broker, so django-q2 reads its own configuration) -----------

def drain_phase(events: int, rounds: int) -> dict:
    """`rounds` alternations of N no-op tasks and N events, for the median of per-round
    ratios: each span lasts seconds, and the machine's load swings between spans."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.models import Schedule

    if events > Conf.SAVE_LIMIT:
        raise SystemExit(f"--events must be at most django-q2's save_limit ({Conf.SAVE_LIMIT}): the no-op "
                         "tasks are counted by their saved results")
    # No scheduled task (every app's sweeper) in the measured spans: they would run there,
    # and their results would push no-op results out of the save_limit before they are counted.
    Schedule.objects.all().delete()
    get_broker().purge_queue()
    results = [drain_round(events) for _ in range(rounds)]
    ratios = [r["events_per_second"] / r["noop_per_second"] for r in results]
    return {"events": events, "rounds": results, "ratios": ratios, "ratio": statistics.median(ratios),
            "events_per_second": statistics.median(r["events_per_second"] for r in results),
            "noop_per_second": statistics.median(r["noop_per_second"] for r in results)}


def drain_round(events: int) -> dict:
    from django.db.models import Max, Min
    from django_q.models import Success
    from django_q.tasks import async_task

    from api.models import Consumer
    from integrations.models import Provider
    from payments.models import Charge
    from webhooks.models import EventStatus, WebhookEvent

    env = dict(os.environ)
    Success.objects.all().delete()
    for _ in range(events):
        async_task("bench.webhook_intake.noop")
    cluster = subprocess.Popen([PY, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        wait_for(lambda: Success.objects.filter(func="bench.webhook_intake.noop").count() >= events,
                 timeout=600, what="the no-op tasks", interval=0.2)
    finally:
        stop(cluster, signal.SIGINT)
    span = Success.objects.filter(func="bench.webhook_intake.noop").aggregate(first=Min("started"), last=Max("stopped"))
    noop_seconds = (span["last"] - span["first"]).total_seconds()

    provider = Provider.objects.get(slug="bench-sandbox")
    consumer, _ = Consumer.objects.get_or_create(name="bench")
    tag = secrets.token_hex(4)
    Charge.objects.bulk_create([
        Charge(consumer=consumer, provider=provider, amount=1000, currency="usd", source="tok_visa",
               provider_charge_id=f"pc_{tag}_{i}", outbound_idempotency_key=f"bench-{tag}-{i}")
        for i in range(events)])
    WebhookEvent.objects.bulk_create([
        WebhookEvent(provider=provider, event_id=f"evt_{tag}_{i}", type="charge.succeeded", raw_body=b"{}",
                     payload={"id": f"evt_{tag}_{i}", "type": "charge.succeeded",
                              "data": {"object": {"id": f"pc_{tag}_{i}", "amount": 1000}}})
        for i in range(events)])
    mine = WebhookEvent.objects.filter(event_id__startswith=f"evt_{tag}_")
    background = start_background(env)
    try:
        wait_for(lambda: not mine.exclude(status=EventStatus.PROCESSED).exists(), timeout=600,
                 what="the events", interval=0.2)
    finally:
        for proc, signum in background:
            stop(proc, signum)
    span = mine.aggregate(first=Min("claimed_at"), last=Max("processed_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    return {"events_seconds": seconds, "events_per_second": events / seconds,
            "noop_seconds": noop_seconds, "noop_per_second": events / noop_seconds}


def run_drain_phase(broker: str, events: int, rounds: int, base_env: dict[str, str]) -> dict:
    env = {**base_env}
    if broker == "redis":
        env["REDIS_URL"] = REDIS
    else:
        env.pop("REDIS_URL", None)
    out = subprocess.run([PY, __file__, "--phase", "drain", "--events", str(events), "--drain-rounds", str(rounds)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- report ---------------------------------------------------------------------------------

def report(args, intake: dict, latency: dict, drain: dict) -> None:
    if drain:
        print(f"\n{args.drain_rounds} drain rounds, load average before: {args.loadavg}\n")
        print("| broker | events | webhook events/s | django-q2 no-op tasks/s | ratio (median of rounds, range) |")
        print("|---|---|---|---|---|")
        for broker, d in drain.items():
            print(f"| {broker} | {d['events']} | {d['events_per_second']:.0f} | {d['noop_per_second']:.0f} "
                  f"| {d['ratio']:.2f}x ({min(d['ratios']):.2f}-{max(d['ratios']):.2f}) |")
    if not (intake and latency and drain):
        print(json.dumps({"intake": intake, "latency": latency, "drain": drain}))
        return
    b, m, i, lean = intake["bare"], intake["bare_mw"], intake["intake"], intake["intake_lean"]
    print(f"\nconcurrency {args.concurrency}, {args.rounds} rounds x {args.requests} requests per target, "
          f"gunicorn 2 sync workers, PostgreSQL, DEBUG off, {os.cpu_count()} CPUs, "
          f"load average before: {args.loadavg}\n")
    print("| target | requests | req/s | p50 ms | p99 ms | throughput vs bare (median of rounds, range) "
          "| p99 vs bare |")
    print("|---|---|---|---|---|---|---|")
    for name, s in (("bare insert view, no middleware", b), ("bare insert view, service middleware", m),
                    ("webhook intake", i), (f"what-if: {WHAT_IF[args.what_if][0]}", lean)):
        ratios = round_ratios(s, b)
        print(f"| {name} | {s['requests']} | {s['rps']:.0f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} "
              f"| {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) "
              f"| {s['p99_ms'] / b['p99_ms']:.2f}x |")
    ratios = round_ratios(i, m)
    print(f"\nintake vs bare with the service middleware: {statistics.median(ratios):.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f}), p99 {i['p99_ms'] / m['p99_ms']:.2f}x")
    print("\nStored -> worker start (ms): total, and split at the relay's hand-off "
          "(stored -> enqueued, enqueued -> started)\n")
    print("| broker | phase | events | p50 | p99 | max | relay p50 / p99 | queue p50 / p99 | intake req/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for broker, phases in latency.items():
        for phase, r in phases.items():
            s, rl, q = r["start"], r["relay"], r["queue"]
            rps = f"{r['intake_rps']:.0f}" if "intake_rps" in r else "-"
            print(f"| {broker} | {phase} | {r['events']} | {s['p50_ms']:.0f} | {s['p99_ms']:.0f} | {s['max_ms']:.0f} "
                  f"| {rl['p50_ms']:.0f} / {rl['p99_ms']:.0f} | {q['p50_ms']:.0f} / {q['p99_ms']:.0f} | {rps} |")
    print("\n" + json.dumps({"intake": {k: {x: y for x, y in v.items() if x != "round_rps"} for k, v in intake.items()},
                             "latency": latency, "drain": drain}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per target per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="time bound of one round")
    parser.add_argument("--latency-events", type=int, default=300, help="idle events per broker")
    parser.add_argument("--load-requests", type=int, default=3000, help="deliveries of the loaded latency run")
    parser.add_argument("--paced-fraction", type=float, default=0.5,
                        help="rate of the paced latency run, as a fraction of the measured intake req/s")
    parser.add_argument("--what-if", choices=sorted(WHAT_IF), default="request-id",
                        help="what the third intake server changes")
    parser.add_argument("--paced-rps", type=float, default=0, help="rate of the paced run (overrides the fraction)")
    parser.add_argument("--events", type=int, default=1000, help="events (and no-op tasks) of a drain round")
    parser.add_argument("--drain-rounds", type=int, default=3, help="alternations of no-op tasks and events")
    parser.add_argument("--brokers", default="redis,orm", help="brokers for the latency and drain phases")
    parser.add_argument("--phase", choices=["all", "drain"], default="all", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "drain":
        django_setup(dict(os.environ))
        print(json.dumps(drain_phase(args.events, args.drain_rounds)))
        return

    args.loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    brokers = args.brokers.split(",")
    env = bench_env(redis=True)
    # One key and secret for this run's processes, so they all read the same credentials.
    os.environ["BENCH_FIELD_KEY"], os.environ["BENCH_SECRET_KEY"] = env["FIELD_ENCRYPTION_KEYS"], env["DJANGO_SECRET_KEY"]
    recreate_database()
    servers = []
    try:
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        # The ORM-broker processes use the database cache (no REDIS_URL): its table too.
        subprocess.run([PY, "manage.py", "createcachetable"], cwd=ROOT, check=True,
                       env={k: v for k, v in env.items() if k != "REDIS_URL"})
        django_setup(env)
        setup_fixtures()
        servers.append(start_server(env))
        servers.append(start_server({**env, "BENCH_MIDDLEWARE": "none"}))
        servers.append(start_server({**env, **WHAT_IF[args.what_if][1]}))
        intake = intake_phase(args, servers) if args.rounds else {}
        args.paced_rps = args.paced_rps or (args.paced_fraction * intake["intake"]["rps"] if intake else 50)
        from webhooks.models import WebhookEvent

        # Phase 1's events are not the latency phase's backlog: mark them done.
        WebhookEvent.objects.update(status="processed")
        port = servers[0][1]
        latency = {}
        for broker in brokers if args.latency_events else ():
            background_env = env if broker == "redis" else {k: v for k, v in env.items() if k != "REDIS_URL"}
            latency[broker] = latency_phase(args, port, broker, background_env)
        for server, _ in servers:
            stop(server)
        servers = []
        drain = ({broker: run_drain_phase(broker, args.events, args.drain_rounds, env) for broker in brokers}
                 if args.events else {})
    finally:
        for server, _ in servers:
            stop(server)
        from django.db import connections

        connections.close_all()
        drop_database()
    report(args, intake, latency, drain)


if __name__ == "__main__":
    main()
