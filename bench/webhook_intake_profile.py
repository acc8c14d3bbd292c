#!/usr/bin/env python
"""Where one webhook delivery's time goes, in process, next to the bare insert view.

    .venv/bin/python bench/webhook_intake_profile.py [--requests 1000] [--top 25]

Same fixtures and WSGI app as bench/webhook_intake.py (its own throwaway database
pgw_bench_webhooks_profile; the same Redis db 2, so not at the same time), but no HTTP server: requests are handed to Django's WSGI handler
directly (one thread), alternating bare / intake / intake with the verification cache
off / two what-if variants of the intake (without the enqueue, without the version read:
for measuring only), so the difference is the view's own work. Prints the mean wall and CPU time (of this
process: not PostgreSQL's or Redis's) per request of each,
then a CPU-time cProfile of the intake (default settings; a separate series, as the
profiler slows what it measures) sorted by cumulative and own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import webhook_intake as bench  # noqa: E402

# Its own database; the benchmark's Redis db (2), so do not run both at once.
bench.DB = "pgw_bench_webhooks_profile"
bench.REDIS = "redis://127.0.0.1:6379/2"


def environ_for(path: str, body: bytes, headers: dict[str, str]) -> dict:
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ


def run(app, path: str, requests, profiler: cProfile.Profile | None = None) -> tuple[float, float]:
    """(wall, this process's CPU) seconds per request."""
    started, cpu = time.perf_counter(), time.process_time()
    for body, headers in requests:
        if profiler:
            profiler.enable()
        status = []
        chunks = app(environ_for(path, body, headers), lambda s, h, status=status: status.append(s))
        b"".join(chunks)
        if profiler:
            profiler.disable()
        if not status[0].startswith("200"):
            raise SystemExit(f"{path}: {status[0]}")
    return (time.perf_counter() - started) / len(requests), (time.process_time() - cpu) / len(requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    env = bench.bench_env(redis=True)
    bench.recreate_database()
    try:
        import subprocess

        subprocess.run([bench.PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        os.environ.update(env)
        from django.conf import settings
        from webhook_intake_app import application  # sets the URLconf and Django up

        from webhooks import conf

        bench.setup_fixtures()
        from webhooks import intake, verify_cache

        # What-if series (not configurations anyone should run): the intake with one of
        # its round trips taken out, to show what each one costs.
        what_if = {
            "what_if_no_enqueue": (intake, "enqueue_on_commit", lambda **kw: None),
            "what_if_no_version_read": (verify_cache, "shared_version", lambda: "fixed"),
        }
        means = {"bare": [], "intake": [], "intake_cache_off": [], **{k: [] for k in what_if},
                 "intake_profiled": []}
        profiler = cProfile.Profile(time.process_time)  # CPU: what a busy 2-core box runs out of
        for name in means:  # warm up
            run(application, "/bench/bare-insert/" if name == "bare" else "/webhooks/bench/",
                bench.make_requests(50, f"warm-{name}"))
        default_ttl = conf.get("WEBHOOK_VERIFY_CACHE_SECONDS")
        for round_ in range(args.rounds):
            for name in means:
                reqs = bench.make_requests(args.requests, f"r{round_}-{name}")
                if name == "bare":
                    means[name].append(run(application, "/bench/bare-insert/", reqs))
                elif name == "intake":
                    means[name].append(run(application, "/webhooks/bench/", reqs))
                elif name == "intake_profiled":
                    means[name].append(run(application, "/webhooks/bench/", reqs, profiler))
                elif name in what_if:
                    module, attr, replacement = what_if[name]
                    original = getattr(module, attr)
                    setattr(module, attr, replacement)
                    try:
                        means[name].append(run(application, "/webhooks/bench/", reqs))
                    finally:
                        setattr(module, attr, original)
                else:
                    settings.WEBHOOK_VERIFY_CACHE_SECONDS = 0
                    means[name].append(run(application, "/webhooks/bench/", reqs))
                    settings.WEBHOOK_VERIFY_CACHE_SECONDS = default_ttl
    finally:
        from django.db import connections

        connections.close_all()
        bench.drop_database()

    print(f"\nin process, one thread, {args.rounds} rounds x {args.requests} requests, "
          f"WEBHOOK_VERIFY_CACHE_SECONDS default {default_ttl}")
    for name, values in means.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        print(f"{name:23s} wall {1000 * sum(walls) / len(walls):.2f} ms/request "
              f"(rounds: {', '.join(f'{1000 * v:.2f}' for v in walls)}), "
              f"CPU here {1000 * sum(cpus) / len(cpus):.2f} ms/request "
              f"(rounds: {', '.join(f'{1000 * v:.2f}' for v in cpus)})")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
