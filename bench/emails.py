#!/usr/bin/env python
"""Email (issue 12): POST /api/v1/emails with vs without the idempotency layer; worker sends/s
against the sandbox vs a bare `requests` loop posting the same messages. One run, side by side.

    .venv/bin/python bench/emails.py [--rounds 5] [--requests 100] [--emails 300] [--drain-rounds 4]
                                     [--attribute 300] [--timeout 300]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_emails REDIS_URL=redis://127.0.0.1:6379/11 \\
      .venv/bin/python bench/emails.py          # the same: these are the defaults

Needs PostgreSQL (trust auth) and Redis, both on loopback. The database named in DATABASE_URL
must start with `bench_`: it is dropped and created again at the start and dropped at the end.
The Redis db in REDIS_URL (not 0) is emptied at the start and at the end. Starts, on loopback
only, `manage.py run_sandbox` (no webhook URL: no events come back) and, per drain round,
`manage.py qcluster` with 2 workers; stops them itself. Every wait is bounded (--timeout),
and the whole run takes about 2-4 minutes on a busy 2-core machine. DEBUG off, the
production defaults otherwise (outbound call records `batch`); the provider's client rate
limit is lifted so the pipeline, not the configured limit, is measured.

1. Latency: POST /api/v1/emails with a new Idempotency-Key through the layer vs the same view
   with the layer taken off (`post.__wrapped__`), request by request, alternating which goes
   first, through Django's full stack in process (middleware, DRF, bearer auth; no socket),
   as bench/idempotency.py does. Both create the row and queue the send task on Redis (no
   worker runs in this phase). p50 / p99 per side and the median of per-round mean ratios.
2. Sends per second, per round: N emails created by the service (`email_create`, rows and
   tasks queued as the API does; not timed), then `qcluster` (2 workers) started: N divided by
   first claim (`claimed_at`) -> last `sent_at`. Against, in the same round and alternating
   which goes first: a bare loop, one `requests.Session`, posting the same N SendGrid bodies
   (built by the adapter from the same rows) to the sandbox's /v3/mail/send with a fresh
   Idempotency-Key each; and the same with 2 threads (as many as the workers). The sandbox is
   reset before each round; afterwards its counters must show exactly one send per key.
3. Only with --attribute N: `email_send` on N queued emails in this process, one thread, no
   django-q, each step timed (claim, credential, gates, HTTP, store) and its SQL counted.
Exit status 1 when a check fails (an email not `sent` once, a key sent twice).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, wait_for  # noqa: E402 - after the path set-up

PY = sys.executable
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_emails"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
SANDBOX_KEY = "sk_bench_emails_only"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

BODY = {"from": "bench@example.com", "subject": "Your order 42",
        "text": "Thanks for order 42. " * 20, "html": "<p>Thanks for order 42.</p>" * 20,
        "metadata": {"order": "42", "bench": "emails"}}


# --- configuration, processes ---------------------------------------------------------------

def configure() -> tuple[dict[str, str], str, str]:
    """The environment of this process and its children; (env, database name, server URL)."""
    db_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    db, redis = urlsplit(db_url), urlsplit(redis_url)
    name = db.path.lstrip("/")
    if db.scheme not in {"postgres", "postgresql"} or not name.startswith("bench_"):
        raise SystemExit(f"DATABASE_URL must be PostgreSQL and name a database bench_*: it is dropped ({db_url})")
    if redis.scheme != "redis" or redis.path.strip("/") in {"", "0"}:
        raise SystemExit(f"REDIS_URL must name a Redis db other than 0: it is emptied ({redis_url})")
    if db.hostname not in LOOPBACK or redis.hostname not in LOOPBACK:
        raise SystemExit("loopback only: DATABASE_URL and REDIS_URL must point at 127.0.0.1")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    from cryptography.fernet import Fernet

    env.update({
        "DATABASE_URL": db_url, "REDIS_URL": redis_url, "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SANDBOX_ENABLED": "1", "LOG_LEVEL": "WARNING", "Q_WORKERS": "2", "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    })
    server = urlunsplit((db.scheme, db.netloc, "/postgres", "", ""))
    return env, name, server


def recreate_database(server: str, name: str, *, create: bool = True) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def start(args: list[str], env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen([PY, "manage.py", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen, signum: int) -> None:
    """Signal the main process only (qcluster can hang on a group-wide signal); kill the
    group if it is not gone in 30 s."""
    if proc.poll() is None:
        proc.send_signal(signum)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def start_sandbox(env: dict[str, str], log, timeout: float) -> tuple[subprocess.Popen, str]:
    import requests

    port = free_port()
    proc = start(["run_sandbox", "--host", "127.0.0.1", "--port", str(port)], {**env, "SANDBOX_API_KEY": SANDBOX_KEY},
                 log)
    base = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise SystemExit(f"the sandbox exited with {proc.returncode}")
        try:
            return requests.get(f"{base}/_control/health", timeout=1).ok
        except requests.RequestException:
            return False

    wait_for(up, timeout=timeout, what="the sandbox", interval=0.1)
    return proc, base


# --- fixtures ---------------------------------------------------------------------------------

def fixtures(sandbox_url: str) -> tuple[object, str, object]:
    """The sandbox-kind provider (rate limit lifted), the consumer and its raw API key."""
    from api.models import Consumer, api_key_create
    from integrations.credentials import credential_rotate
    from integrations.models import Provider

    provider = Provider.objects.create(slug="bench-sandbox", name="Bench sandbox", kind="sandbox",
                                       base_url=sandbox_url, rate_limit_requests=10**9)
    credential_rotate(provider=provider, purpose="api_key", value=SANDBOX_KEY)
    _, raw = api_key_create(consumer_name="bench")
    return provider, raw, Consumer.objects.get(name="bench")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- 1. latency -------------------------------------------------------------------------------

def latency_phase(args, raw_key: str) -> dict:
    from django.test import Client
    from django.test.utils import override_settings

    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    body = json.dumps({**BODY, "to": "ada@example.com"})

    def post(url: str) -> None:
        response = client.post(url, data=body, content_type="application/json",
                               HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)
        assert response.status_code == 202, response.content

    sides = {"layer": "/api/v1/emails", "bare": "/bench/emails"}
    samples = {"layer": [], "bare": []}
    round_ratios = []
    with override_settings(ROOT_URLCONF=__name__, DEBUG=False):
        for _ in range(20):  # warm-up: imports, connections, caches
            for url in sides.values():
                post(url)
        for _ in range(args.rounds):
            spent = {"layer": [], "bare": []}
            for i in range(args.requests):
                order = ("layer", "bare") if i % 2 == 0 else ("bare", "layer")
                for side in order:
                    started = time.perf_counter()
                    post(sides[side])
                    spent[side].append(time.perf_counter() - started)
            round_ratios.append(statistics.fmean(spent["layer"]) / statistics.fmean(spent["bare"]))
            for side, values in spent.items():
                samples[side].extend(values)
    out = {side: {"n": len(v), "p50_ms": 1000 * percentile(v, 0.5), "p99_ms": 1000 * percentile(v, 0.99),
                  "mean_ms": 1000 * statistics.fmean(v)} for side, v in samples.items()}
    out["round_ratios"] = round_ratios
    return out


# --- 2. sends per second ------------------------------------------------------------------------

def queue_emails(consumer, n: int, tag: str) -> tuple[list[str], list[str]]:
    """N emails created and queued as the API does (tasks on Redis, no worker running);
    (ids, the SendGrid body of each as the sandbox adapter builds it from the row)."""
    from emails.services import EMAIL, _message, email_create
    from integrations.kinds import adapter_for

    ids, bodies = [], []
    for i in range(n):
        email = email_create(consumer=consumer, provider_slug=None, to=[f"user{i}.{tag}@example.com"],
                             subject=BODY["subject"], from_address=BODY["from"], text=BODY["text"],
                             html=BODY["html"], metadata=BODY["metadata"], request_key=f"{tag}-{i}")
        ids.append(email.id)
        bodies.append(json.dumps(adapter_for(email.provider, EMAIL).payload(_message(email))))
    return ids, bodies


def bare_loop(base: str, bodies: list[str], tag: str, threads: int) -> dict:
    """Post every body to /v3/mail/send with `requests`, one Session per thread, fresh keys."""
    import requests

    latencies: list[float] = []
    lock = threading.Lock()

    def worker(part: list[tuple[int, str]]) -> None:
        session = requests.Session()
        session.trust_env = False  # as the outbound client: no proxy/.netrc lookups per call
        session.headers.update({"Authorization": f"Bearer {SANDBOX_KEY}", "Content-Type": "application/json"})
        mine = []
        for i, body in part:
            started = time.perf_counter()
            response = session.post(f"{base}/v3/mail/send", data=body, headers={"Idempotency-Key": f"{tag}-{i}"},
                                    timeout=10)
            mine.append(time.perf_counter() - started)
            assert response.status_code == 202, response.text
        session.close()
        with lock:
            latencies.extend(mine)

    items = list(enumerate(bodies))
    parts = [items[t::threads] for t in range(threads)]
    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(part,)) for part in parts]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - started
    assert len(latencies) == len(bodies), "a bare thread failed"
    return {"n": len(bodies), "seconds": seconds, "per_second": len(bodies) / seconds,
            "p50_ms": 1000 * percentile(latencies, 0.5), "p99_ms": 1000 * percentile(latencies, 0.99)}


def worker_drain(ids: list[str], env: dict[str, str], log, timeout: float) -> dict:
    from django.db.models import Count, Max, Min

    from emails.models import Email, EmailStatus

    mine = Email.objects.filter(pk__in=ids)
    started = time.perf_counter()
    cluster = start(["qcluster"], env, log)
    try:
        def done():
            if cluster.poll() is not None:
                raise SystemExit(f"qcluster exited with {cluster.returncode}")
            return not mine.filter(status__in=(EmailStatus.QUEUED, EmailStatus.SENDING)).exists()

        wait_for(done, timeout=timeout, what=f"{len(ids)} emails to be sent", interval=0.1)
        wall = time.perf_counter() - started
    finally:
        stop(cluster, signal.SIGINT)
    statuses = dict(mine.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    span = mine.aggregate(first=Min("claimed_at"), last=Max("sent_at"), attempts=Max("attempts"))
    seconds = (span["last"] - span["first"]).total_seconds()
    in_task = [(s - c).total_seconds() for c, s in mine.values_list("claimed_at", "sent_at")]
    keys = list(mine.values_list("outbound_idempotency_key", flat=True))
    return {"n": len(ids), "seconds": seconds, "per_second": len(ids) / seconds, "wall_with_startup": wall,
            "statuses": statuses, "max_attempts": span["attempts"], "keys": keys,
            "claim_to_sent_p50_ms": 1000 * percentile(in_task, 0.5),
            "claim_to_sent_p99_ms": 1000 * percentile(in_task, 0.99)}


def drain_phase(args, consumer, base: str, env: dict[str, str], log) -> list[dict]:
    import requests
    from django_q.brokers import get_broker

    rounds = []
    for r in range(args.drain_rounds):
        requests.post(f"{base}/_control/reset", timeout=5).raise_for_status()
        get_broker().purge_queue()
        tag = f"r{r}-{secrets.token_hex(3)}"
        ids, bodies = queue_emails(consumer, args.emails, tag)
        result = {"loadavg": os.getloadavg()}
        bare_sides = (("bare1", 1), ("bare2", 2))
        if r % 2 == 0:
            for name, threads in bare_sides:
                result[name] = bare_loop(base, bodies, f"{tag}-{name}", threads)
            result["worker"] = worker_drain(ids, env, log, args.timeout)
        else:
            result["worker"] = worker_drain(ids, env, log, args.timeout)
            for name, threads in reversed(bare_sides):
                result[name] = bare_loop(base, bodies, f"{tag}-{name}", threads)
        stats = requests.get(f"{base}/_control/stats", timeout=5).json()["emails"]
        by_key = stats["by_idempotency_key"]
        keys = result["worker"].pop("keys")
        result["check"] = {
            "sandbox_sends": stats["total"], "expected": 3 * args.emails,
            "worker_keys_sent_once": sum(by_key.get(k) == 1 for k in keys),
            "keys_sent_more_than_once": sum(v > 1 for v in by_key.values()),
            "without_key": stats["without_idempotency_key"],
        }
        rounds.append(result)
    return rounds


# --- 3. where a send's time goes (optional) --------------------------------------------------

def attribute_phase(consumer, n: int) -> dict:
    """In this process, one thread, no django-q: `email_send` on n queued emails, one after the
    other, against the running sandbox, with its steps timed (wrappers) and its SQL counted."""
    from collections import Counter

    from django.db import connection
    from django_q.brokers import get_broker

    from emails import services
    from integrations.client import core, transport

    spent, calls = Counter(), Counter()
    sql = {"n": 0, "seconds": 0.0}

    def patch(owner, name: str, label: str):
        raw = owner.__dict__[name]
        original = getattr(owner, name)

        def timed(*a, **kw):
            started = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                spent[label] += time.perf_counter() - started
                calls[label] += 1

        setattr(owner, name, staticmethod(timed) if isinstance(raw, staticmethod) else timed)
        return owner, name, raw

    def count_sql(execute, query, params, many, context):
        started = time.perf_counter()
        try:
            return execute(query, params, many, context)
        finally:
            sql["n"] += 1
            sql["seconds"] += time.perf_counter() - started

    ids, _ = queue_emails(consumer, n, f"attr-{secrets.token_hex(3)}")
    get_broker().purge_queue()  # sent here, not by a worker
    steps = [(services, "_claim", "1 claim: transaction (lock, update, history row, commit)"),
             (services, "adapter_for", "2 adapter lookup"),
             (core.ProviderClient, "request", "3 ProviderClient.request, all of it"),
             (core, "credential_value", "3a   credential read + decrypt (per send: a new client)"),
             (core.ProviderClient, "_permits", "3b   gates: circuit + rate-limit token (Redis)"),
             (transport, "exchange", "3c   the HTTP exchange with the sandbox"),
             (core.ProviderClient, "_record_circuit", "3d   circuit outcome (Redis)"),
             (core.ProviderClient, "_finish", "3e   finish: log line, metrics, call record (batch)"),
             (services, "_store_result", "4 store result: transaction (lock, update, history, commit)")]
    patched = [patch(*step) for step in steps]
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        with connection.execute_wrapper(count_sql):
            for email_id in ids:
                assert services.email_send(email_id=email_id) == "sent"
    finally:
        for owner, name, raw in patched:
            setattr(owner, name, raw)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    per = {label: 1000 * spent[label] / n for _, _, label in steps}
    return {"n": n, "wall_ms": 1000 * wall / n, "cpu_ms": 1000 * cpu / n, "steps_ms": per,
            "calls_per_send": {label: calls[label] / n for _, _, label in steps},
            "sql_per_send": sql["n"] / n, "sql_ms": 1000 * sql["seconds"] / n}


# --- report -----------------------------------------------------------------------------------

def report(args, latency: dict, rounds: list[dict], load_before, load_after, attribution: dict) -> bool:
    ok = True
    print(f"\n{os.cpu_count()} CPUs; load average before {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    lay, bare = latency["layer"], latency["bare"]
    rr = latency["round_ratios"]
    print(f"\n1. POST /api/v1/emails, {args.rounds} rounds x {args.requests} requests per side, interleaved\n")
    print("| side | requests | p50 ms | p99 ms | mean ms |")
    print("|---|---|---|---|---|")
    for name, s in (("with the idempotency layer", lay), ("without (post.__wrapped__)", bare)):
        print(f"| {name} | {s['n']} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['mean_ms']:.2f} |")
    print(f"\nratio with/without: p50 {lay['p50_ms'] / bare['p50_ms']:.2f}x, p99 {lay['p99_ms'] / bare['p99_ms']:.2f}x, "
          f"mean (median of rounds) {statistics.median(rr):.2f}x (rounds {', '.join(f'{x:.2f}' for x in rr)})")
    print(f"\n2. sends per second, {args.emails} emails per side per round\n")
    print("| round (load avg) | worker, qcluster x2 | bare loop x1 | bare loops x2 | worker / bare x1 "
          "| worker / bare x2 | worker claim->sent p50 / p99 ms | bare x1 post p50 / p99 ms | check |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r, res in enumerate(rounds):
        w, b1, b2, c = res["worker"], res["bare1"], res["bare2"], res["check"]
        good = (c["sandbox_sends"] == c["expected"] and c["worker_keys_sent_once"] == args.emails
                and c["keys_sent_more_than_once"] == 0 and c["without_key"] == 0
                and w["statuses"] == {"sent": args.emails} and w["max_attempts"] == 1)
        ok &= good
        print(f"| {r + 1} ({res['loadavg'][0]:.1f}) | {w['per_second']:.1f}/s | {b1['per_second']:.1f}/s "
              f"| {b2['per_second']:.1f}/s | {w['per_second'] / b1['per_second']:.2f}x "
              f"| {w['per_second'] / b2['per_second']:.2f}x | {w['claim_to_sent_p50_ms']:.1f} / "
              f"{w['claim_to_sent_p99_ms']:.1f} | {b1['p50_ms']:.2f} / {b1['p99_ms']:.2f} "
              f"| {'OK' if good else 'FAILED'} |")
    if attribution:
        a = attribution
        print(f"\n3. email_send in process, one thread, {a['n']} sends: {a['wall_ms']:.1f} ms wall, "
              f"{a['cpu_ms']:.1f} ms CPU per send; {a['sql_per_send']:.1f} SQL statements, {a['sql_ms']:.1f} ms\n")
        print("| step | ms per send | calls per send |")
        print("|---|---|---|")
        for label, ms in a["steps_ms"].items():
            print(f"| {label} | {ms:.2f} | {a['calls_per_send'][label]:.1f} |")
    print("\n" + json.dumps({"latency": latency, "drain": rounds, "attribution": attribution}, default=str))
    return ok


# --- the app: the service's URLs plus the view without the layer -----------------------------

urlpatterns: list = []


def build_urls() -> None:
    from django.urls import include, path

    from emails.views import EmailListCreate

    class BareEmailCreate(EmailListCreate):
        """The same view with the idempotency layer taken off."""

        post = EmailListCreate.post.__wrapped__

    urlpatterns[:] = [path("bench/emails", BareEmailCreate.as_view()), path("", include("config.urls"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds")
    parser.add_argument("--requests", type=int, default=100, help="latency requests per side per round")
    parser.add_argument("--emails", type=int, default=300, help="emails per side per drain round")
    parser.add_argument("--drain-rounds", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300, help="bound of every wait, seconds")
    parser.add_argument("--attribute", type=int, default=0,
                        help="then time the steps of N sends in process (no django-q), 0: skip")
    args = parser.parse_args()
    if not (1 <= args.requests <= 2000 and 1 <= args.rounds <= 20 and 1 <= args.emails <= 5000
            and 1 <= args.drain_rounds <= 10 and 0 <= args.attribute <= 5000):
        raise SystemExit("keep it bounded: --requests 1-2000, --rounds 1-20, --emails 1-5000, --drain-rounds 1-10, "
                         "--attribute 0-5000")

    env, db_name, server = configure()
    os.environ.update(env)
    load_before = os.getloadavg()
    log = tempfile.NamedTemporaryFile(prefix="bench_emails_", suffix=".log", delete=False)  # noqa: SIM115
    recreate_database(server, db_name)
    flush_redis(env["REDIS_URL"])
    sandbox = None
    try:
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=args.timeout)
        import django

        django.setup()
        build_urls()
        sandbox, base = start_sandbox(env, log, args.timeout)
        _, raw, consumer = fixtures(base)

        latency = latency_phase(args, raw)
        from django_q.brokers import get_broker

        from emails.models import Email

        get_broker().purge_queue()  # phase 1's tasks are not phase 2's backlog
        Email.objects.all().delete()
        rounds = drain_phase(args, consumer, base, env, log)
        attribution = attribute_phase(consumer, args.attribute) if args.attribute else {}
    except BaseException:
        log.flush()
        sys.stderr.write(Path(log.name).read_text()[-4000:])
        raise
    finally:
        if sandbox is not None:
            stop(sandbox, signal.SIGTERM)
        from django.db import connections

        connections.close_all()
        recreate_database(server, db_name, create=False)
        flush_redis(env["REDIS_URL"])
        log.close()
    ok = report(args, latency, rounds, load_before, os.getloadavg(), attribution)
    os.unlink(log.name)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
