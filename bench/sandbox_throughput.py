#!/usr/bin/env python
"""How many charges per second the sandbox provider serves, next to a bare stdlib server.

Benchmarks and chaos runs drive the gateway against the sandbox; this says how far the
sandbox itself is from being the bottleneck. Both servers run in this process on free
loopback ports (same threading server class, same client), so the ratio isolates the
sandbox's own work: auth, fault checks, idempotency, charge creation, event queueing.

    .venv/bin/python bench/sandbox_throughput.py [--requests 3000] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.api import Sandbox, SandboxConfig  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402

API_KEY = "sk_test_bench"


class _Bare(BaseHTTPRequestHandler):
    """The baseline: read the body, answer a fixed JSON charge."""

    protocol_version = "HTTP/1.1"
    # The same socket settings as the sandbox's handler, so only the work differs.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    body = json.dumps({"id": "ch_x", "object": "charge", "status": "succeeded"}).encode()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def drive(url: str, *, total: int, clients: int, label: str) -> float:
    """Requests per second for `total` POSTs over `clients` threads, each its own session."""
    per_client = total // clients
    barrier = threading.Barrier(clients + 1)
    errors: list[str] = []

    def client(index: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {API_KEY}"
        barrier.wait()
        for n in range(per_client):
            response = session.post(f"{url}/v1/charges", timeout=10,
                                    json={"amount": 1000, "currency": "usd", "source": "tok_visa"},
                                    headers={"Idempotency-Key": f"{label}-{index}-{n}"})
            if response.status_code != 200:
                errors.append(response.text)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{label}: {len(errors)} failed requests, e.g. {errors[0]}")
    return per_client * clients / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    bare = ThreadingHTTPServer(("127.0.0.1", 0), _Bare)
    bare.daemon_threads = True
    threading.Thread(target=bare.serve_forever, daemon=True).start()
    # No webhook URL: events are queued and counted, not sent (the receiver is not measured).
    sandbox = SandboxServer(Sandbox(SandboxConfig(api_key=API_KEY)), port=0).start()
    try:
        bare_url = f"http://127.0.0.1:{bare.server_address[1]}"
        drive(bare_url, total=200, clients=args.clients, label="warm-bare")
        drive(sandbox.url, total=200, clients=args.clients, label="warm-sandbox")
        baseline = drive(bare_url, total=args.requests, clients=args.clients, label="bare")
        measured = drive(sandbox.url, total=args.requests, clients=args.clients, label="sandbox")
        stats = sandbox.sandbox.control_stats(None).body["charges"]
    finally:
        sandbox.stop()
        bare.shutdown()
    print(f"{args.requests} POSTs, {args.clients} clients, keep-alive")
    print(f"  bare stdlib server : {baseline:8.0f} req/s")
    print(f"  sandbox /v1/charges: {measured:8.0f} req/s  (ratio {measured / baseline:.2f})")
    warm_up = 200 // args.clients * args.clients
    print(f"  charges made: {stats['total'] - warm_up} measured + {warm_up} warm-up, one per key: "
          f"{set(stats['by_idempotency_key'].values()) == {1}}")


if __name__ == "__main__":
    main()
