"""manage.py run_sandbox [--port 8099]: the local Stripe-like provider, in its own process.

Secrets are best given through the environment (SANDBOX_API_KEY, SANDBOX_WEBHOOK_SECRET):
command-line arguments are visible to every user of the machine in `ps`.
"""

from __future__ import annotations

import os
import signal
import socket

from django.core.management.base import CommandError

from config.commands import Command as BaseCommand
from sandbox.api import Sandbox, SandboxConfig
from sandbox.server import SandboxServer
from sandbox.webhooks import WebhookSettings, validate_secret

# The sandbox is a separate service with its own settings: it reads them here, not through
# Django settings, so it can be configured exactly like a third party (see docs/sandbox.md).
ENV_API_KEY = "SANDBOX_API_KEY"
ENV_WEBHOOK_URL = "SANDBOX_WEBHOOK_URL"
ENV_WEBHOOK_SECRET = "SANDBOX_WEBHOOK_SECRET"  # noqa: S105 - a variable name
DEFAULT_API_KEY = "sk_test_sandbox"


class Command(BaseCommand):
    help = "Run the sandbox provider (Stripe-like API, fault injection, signed webhooks back)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8099, help="port (default 8099; 0 picks a free one)")
        parser.add_argument("--fd", type=int, default=None,
                            help="serve on this inherited, already bound socket instead of --host/--port")
        parser.add_argument("--api-key", default=None,
                            help=f"bearer key clients must send (default ${ENV_API_KEY}, else {DEFAULT_API_KEY})")
        parser.add_argument("--webhook-url", default=None,
                            help=f"where events are POSTed (default ${ENV_WEBHOOK_URL}; empty: none sent)")
        parser.add_argument("--webhook-secret", default=None,
                            help=f"whsec_<base64> signing secret (default ${ENV_WEBHOOK_SECRET})")
        parser.add_argument("--webhook-max-attempts", type=int, default=8)
        parser.add_argument("--webhook-backoff-base", type=float, default=0.5,
                            help="seconds before the 2nd delivery attempt; doubles each time")
        parser.add_argument("--webhook-backoff-max", type=float, default=30.0)

    def handle(self, *args, **options):
        api_key = options["api_key"] or os.environ.get(ENV_API_KEY) or DEFAULT_API_KEY
        webhook_url = options["webhook_url"] if options["webhook_url"] is not None else os.environ.get(ENV_WEBHOOK_URL, "")
        secret = options["webhook_secret"] or os.environ.get(ENV_WEBHOOK_SECRET, "")
        if webhook_url and not secret:
            raise CommandError(f"a webhook URL needs a secret: set {ENV_WEBHOOK_SECRET}=whsec_<base64> "
                               "or pass --webhook-secret")
        if secret:
            try:
                validate_secret(secret)
            except ValueError as err:
                raise CommandError(f"{ENV_WEBHOOK_SECRET}: {err}") from err
        if options["webhook_max_attempts"] < 1:
            raise CommandError("--webhook-max-attempts must be at least 1")

        config = SandboxConfig(api_key=api_key, webhooks=WebhookSettings(
            url=webhook_url, secret=secret, max_attempts=options["webhook_max_attempts"],
            backoff_base=options["webhook_backoff_base"], backoff_max=options["webhook_backoff_max"]))
        sock = socket.socket(fileno=options["fd"]) if options["fd"] is not None else None
        try:
            server = SandboxServer(Sandbox(config), host=options["host"], port=options["port"], sock=sock)
        except OSError as err:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {err}") from err

        def stop(signum, frame):
            raise KeyboardInterrupt

        # SIGTERM (process managers, tests) stops as cleanly as Ctrl-C.
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(f"Sandbox provider listening on {server.url} "
                          f"(webhooks: {webhook_url or 'off'})")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        self.stdout.write("Sandbox provider stopped.")
