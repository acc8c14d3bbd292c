#!/usr/bin/env python
"""`make run`: the whole service on this machine, wired to the local sandbox provider.

1. migrate the database (SQLite in var/ unless DATABASE_URL says otherwise);
2. seed, idempotently: the superuser `admin` (new password printed each run), the
   provider `sandbox` pointing at the local sandbox with its API key and webhook secret
   stored encrypted, and a fresh API key for the consumer `demo` (printed);
3. start the web server (127.0.0.1:8000), a django-q2 worker, the webhook relay (stored
   webhook events to the worker) and the sandbox (127.0.0.1:8099, webhooks back to the
   web server), each in its own process group;
4. print a walkthrough with copy-paste curl commands;
5. on Ctrl-C (or when one of them dies) stop all four and wait for each.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from config.env import VAR_DIR  # noqa: E402 - needs ROOT on the path; reads no Django settings

PYTHON = sys.executable
LOG_DIR = VAR_DIR / "log"
DEMO_CONSUMER = "demo"
DEMO_KEY_LABEL = "make run"


@dataclass
class Child:
    name: str
    popen: subprocess.Popen
    stop_signal: int
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Signal the main process only (qcluster can hang on a group-wide SIGTERM), wait,
        and kill the whole group only if it did not stop in time."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  {self.name} did not stop within {timeout:.0f}s: killing its process group")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # leftovers of an exited main process too
        self.popen.wait()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL we built
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


def manage(*args: str) -> list[str]:
    return [PYTHON, str(ROOT / "manage.py"), *args]


def seed(*, sandbox_url: str) -> dict[str, str]:
    """Create or update the demo data; returns what the walkthrough prints and the sandbox needs."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connections, transaction
    from django.utils import timezone

    from api.models import ApiKey, api_key_create
    from integrations.credentials import credential_rotate, credential_value
    from integrations.errors import CredentialMissing
    from integrations.models import Provider

    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        user, _ = get_user_model().objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()

        provider, created = Provider.objects.get_or_create(
            slug="sandbox", defaults={"name": "Sandbox", "kind": "sandbox", "base_url": sandbox_url,
                                      # so the demo can send email without naming a sender
                                      "email_from": "Demo shop <shop@example.test>"})
        if not created and (provider.kind, provider.base_url, provider.enabled) != ("sandbox", sandbox_url, True):
            provider.kind, provider.base_url, provider.enabled = "sandbox", sandbox_url, True
            provider.save(update_fields=["kind", "base_url", "enabled", "updated"])

        secrets_for_sandbox = {}
        for purpose, env_name, make in (
            ("api_key", "SANDBOX_API_KEY", lambda: "sk_test_" + secrets.token_urlsafe(24)),
            ("webhook_secret", "SANDBOX_WEBHOOK_SECRET",
             lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()),
        ):
            try:
                current = credential_value(provider=provider, purpose=purpose)
            except CredentialMissing:
                current = None
            wanted = os.environ.get(env_name) or current or make()
            if wanted != current:  # rotate only when missing or different
                credential_rotate(provider=provider, purpose=purpose, value=wanted)
            secrets_for_sandbox[env_name] = wanted

        # One demo key at a time: the previous runs' keys are revoked.
        ApiKey.objects.filter(consumer__name=DEMO_CONSUMER, label=DEMO_KEY_LABEL,
                              revoked_at__isnull=True).update(revoked_at=timezone.now())
        _, api_key = api_key_create(consumer_name=DEMO_CONSUMER, label=DEMO_KEY_LABEL)
    connections.close_all()
    return {"password": password, "api_key": api_key, **secrets_for_sandbox}


def walkthrough(*, web: str, sandbox: str, password: str, api_key: str) -> str:
    key = f"demo-{secrets.token_hex(4)}"
    return f"""
==============================================================================
 Provider gateway is running
   web server   {web}
   worker       django-q2 qcluster
   relay        manage.py webhook_relay (webhook events to the worker)
   sandbox      {sandbox}
   logs         {LOG_DIR}/{{web,worker,relay,sandbox}}.log

 Admin:  {web}/admin/   user: admin   password: {password}
 API key for the consumer "demo" (shown once; a new one each run):
   {api_key}

 Try it (copy-paste into another terminal):

   export API_KEY='{api_key}'

 1. Create a charge with an Idempotency-Key. tok_pending makes the sandbox answer
    "pending" and settle it a moment later, telling us by a signed webhook:

   RESPONSE=$(curl -s -X POST {web}/api/v1/charges \\
     -H "Authorization: Bearer $API_KEY" -H "Idempotency-Key: {key}" \\
     -H "Content-Type: application/json" \\
     -d '{{"amount": 2000, "currency": "USD", "source": "tok_pending", "description": "Demo order"}}')
   echo "$RESPONSE"

 2. Send exactly the same request again: the stored answer comes back, marked
    "Idempotent-Replayed: true", and nothing is charged twice:

   curl -si -X POST {web}/api/v1/charges \\
     -H "Authorization: Bearer $API_KEY" -H "Idempotency-Key: {key}" \\
     -H "Content-Type: application/json" \\
     -d '{{"amount": 2000, "currency": "USD", "source": "tok_pending", "description": "Demo order"}}'

 3. A second later, fetch the charge: the sandbox's charge.succeeded webhook has
    turned it "succeeded":

   CHARGE_ID=$(echo "$RESPONSE" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
   curl -s {web}/api/v1/charges/$CHARGE_ID -H "Authorization: Bearer $API_KEY"

 More: source "tok_visa" succeeds at once, "tok_chargeDeclined" is declined (402).
 Email goes the same way: POST /api/v1/emails with {{"to", "subject", "text"}} and a key
 (docs/email.md); the sandbox marks it delivered by a signed webhook a moment later.
 The sandbox counts what it really charged:  curl -s {sandbox}/_control/stats
 See the webhook events and charges in the admin. Failure injection: docs/sandbox.md

 Press Ctrl-C to stop all four.
==============================================================================
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--web-port", type=int, default=8000)
    parser.add_argument("--sandbox-port", type=int, default=8099)
    args = parser.parse_args()
    os.chdir(ROOT)
    os.environ["DJANGO_DEBUG"] = "1"  # the demo is development mode, whatever the shell says
    os.environ["PYTHONUNBUFFERED"] = "1"
    web_url = f"http://127.0.0.1:{args.web_port}"
    sandbox_url = f"http://127.0.0.1:{args.sandbox_port}"

    busy = [p for p in (args.web_port, args.sandbox_port) if not port_free(p)]
    if busy:
        print(f"Port(s) {', '.join(map(str, busy))} on 127.0.0.1 are in use (another `make run`?). "
              "Stop that program, or pass other ports: .venv/bin/python scripts/run_demo.py "
              "--web-port 8001 --sandbox-port 8199", file=sys.stderr)
        return 1

    print("==> migrating the database", flush=True)
    if subprocess.run(manage("migrate", "--noinput", "-v", "0")).returncode != 0:
        print("migrate failed (its error is above); nothing was started.", file=sys.stderr)
        return 1
    print("==> seeding the admin user, the sandbox provider and a demo API key", flush=True)
    seeded = seed(sandbox_url=sandbox_url)

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    # Web and worker write their metrics to one directory, so /metrics shows the worker's
    # counts (webhook processing, the completer's calls) too. Stale files from a previous
    # run would add up with the new ones: start empty.
    metrics_dir = VAR_DIR / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    sandbox_env = {
        "SANDBOX_API_KEY": seeded["SANDBOX_API_KEY"],
        "SANDBOX_WEBHOOK_SECRET": seeded["SANDBOX_WEBHOOK_SECRET"],
        "SANDBOX_WEBHOOK_URL": f"{web_url}/webhooks/sandbox/",
    }
    plan = [
        ("sandbox", manage("run_sandbox", "--port", str(args.sandbox_port)), signal.SIGTERM, sandbox_env),
        ("worker", manage("qcluster"), signal.SIGINT, {}),
        ("relay", manage("webhook_relay"), signal.SIGTERM, {}),
        ("web", manage("runserver", "--noreload", f"127.0.0.1:{args.web_port}"), signal.SIGINT, {}),
    ]
    children: list[Child] = []
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for name, argv, stop_signal, extra_env in plan:
            log_path = LOG_DIR / f"{name}.log"
            with open(log_path, "wb") as log:
                # Own session: Ctrl-C reaches only this script, which stops each child its way.
                popen = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **extra_env},
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            children.append(Child(name, popen, stop_signal, log_path))
        print("==> started " + ", ".join(f"{c.name} (pid {c.popen.pid})" for c in children), flush=True)
        deadline = time.monotonic() + 60
        for url in (f"{sandbox_url}/_control/health", f"{web_url}/health/live"):
            while not http_ok(url) and not stopping:
                dead = [c for c in children if not c.alive()]
                if dead or time.monotonic() > deadline:
                    culprit = dead[0] if dead else children[-1]
                    print(f"\n{culprit.name} did not start. The end of {culprit.log_path}:\n"
                          f"{culprit.log_tail()}", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        if not stopping:
            print(walkthrough(web=web_url, sandbox=sandbox_url, password=seeded["password"],
                              api_key=seeded["api_key"]), flush=True)
        while not stopping:
            dead = [c for c in children if not c.alive()]
            if dead:
                child = dead[0]
                print(f"\n{child.name} exited with status {child.popen.returncode}; stopping the others. "
                      f"The end of {child.log_path}:\n{child.log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.3)
        return 0
    finally:
        print("\n==> stopping: web server, relay, worker, sandbox", flush=True)
        for child in reversed(children):
            child.stop()
            print(f"  {child.name} stopped (exit status {child.popen.returncode})", flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C during migrate or seeding: nothing was started yet
        sys.exit(130)
