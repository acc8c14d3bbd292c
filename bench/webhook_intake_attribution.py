#!/usr/bin/env python
"""Where an intake request's CPU goes inside gunicorn, next to the bare view, under load.

    .venv/bin/python bench/webhook_intake_attribution.py [--seconds 10] [--top 40]

The setup of bench/webhook_intake.py (gunicorn, 2 sync workers, PostgreSQL, Redis
broker; its throwaway database and Redis db, so not at the same time), but one server
takes both kinds of request at once: two load generators, 4 threads each, send signed
deliveries to the intake and bodies to the bare insert view, so both meet the same
machine. py-spy samples both workers (1,000 Hz, only while they hold the GIL, so CPU in
Python and C extensions, not waiting) and each sample is charged to the view on its
stack. Prints the view subtrees' time per request of each kind, the time outside any
view per request (the same code for both: gunicorn, middleware), then the intake's and
the bare view's heaviest frames (inclusive time per request).

An in-process cProfile (bench/webhook_intake_profile.py) distorts small calls and
misses what contention does to a worker; this shows the costs as they are under load.
Needs py-spy (a dev dependency) and permission to attach to the workers (root, or
ptrace allowed).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import webhook_intake as bench  # noqa: E402

INTAKE, BARE = "/webhooks/bench/", "/bench/bare-insert/"
RATE = 1000  # samples per second: one sample is 1 ms


def _frame(raw: str) -> str:
    raw = re.sub(r":\d+\)", ")", raw)
    return re.sub(r"\(\S*site-packages/", "(", raw)


def attribute(files: list[Path]) -> tuple[collections.Counter, dict[str, collections.Counter]]:
    """Samples per kind (intake, bare, other) and inclusive samples per frame of each."""
    totals: collections.Counter = collections.Counter()
    frames = {kind: collections.Counter() for kind in ("intake", "bare", "other")}
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            names = [_frame(f) for f in stack.split(";")]
            kind = ("intake" if any(n.startswith("receive (") and "webhooks/views.py" in n for n in names)
                    else "bare" if any(n.startswith("bare_insert (") for n in names) else "other")
            totals[kind] += int(count)
            for name in set(names):
                frames[kind][name] += int(count)
    return totals, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the sampled load")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    py_spy = Path(bench.BIN) / "py-spy"
    if not py_spy.exists():
        raise SystemExit("py-spy is not installed: pip install -e '.[dev]'")

    env = bench.bench_env(redis=True)
    os.environ["BENCH_FIELD_KEY"], os.environ["BENCH_SECRET_KEY"] = env["FIELD_ENCRYPTION_KEYS"], env["DJANGO_SECRET_KEY"]
    bench.recreate_database()
    server = None
    try:
        subprocess.run([bench.PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        bench.django_setup(env)
        bench.setup_fixtures()
        server, port = bench.start_server(env)
        for path in (INTAKE, BARE):
            bench.load(port, path, bench.make_requests(200, f"warm{path}"), 8, 30)
        workers = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True,
                                 check=True).stdout.split()
        with tempfile.TemporaryDirectory() as tmp:
            outputs = [Path(tmp) / f"{pid}.txt" for pid in workers]
            spies = [subprocess.Popen([str(py_spy), "record", "--pid", pid, "--duration", str(int(args.seconds) + 3),
                                       "--rate", str(RATE), "--format", "raw", "--gil", "--nonblocking",
                                       "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for pid, out in zip(workers, outputs, strict=True)]
            time.sleep(1)  # py-spy attaches
            done = {}

            def drive(kind: str, path: str) -> None:
                done[kind] = bench.load(port, path, bench.make_requests(50_000, f"m{kind}"), 4, args.seconds)

            threads = [threading.Thread(target=drive, args=(kind, path)) for kind, path in
                       (("intake", INTAKE), ("bare", BARE))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for spy in spies:
                spy.wait()
            totals, frames = attribute([out for out in outputs if out.exists()])
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        bench.drop_database()

    n = {kind: done[kind]["ok"] for kind in ("intake", "bare")}
    us = 1_000_000 / RATE
    print(f"\n{n['intake']} intake and {n['bare']} bare requests in {args.seconds:.0f} s, sampled at {RATE} Hz "
          "while holding the GIL\n")
    print(f"view, per request: intake {totals['intake'] * us / n['intake']:.0f} us, "
          f"bare {totals['bare'] * us / n['bare']:.0f} us; outside the views (both kinds): "
          f"{totals['other'] * us / (n['intake'] + n['bare']):.0f} us per request\n")
    for kind in ("intake", "bare"):
        print(f"{kind}: heaviest frames, inclusive us per request")
        for name, count in frames[kind].most_common(args.top if kind == "intake" else args.top // 3):
            if "gunicorn" in name or "django/core/handlers" in name:
                continue
            print(f"  {count * us / n[kind]:7.1f}  {name[:120]}")
        print()


if __name__ == "__main__":
    main()
