"""Fixtures for the sandbox's own tests: the sandbox and a webhook receiver, both real HTTP
servers on free loopback ports, in threads of the test process."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from sandbox.api import Sandbox, SandboxConfig
from sandbox.server import SandboxServer
from sandbox.webhooks import WebhookSettings

API_KEY = "sk_test_unit_sandbox"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records webhook deliveries; answers the statuses in `script` first, then 200."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until at least `count` deliveries arrived (successful or not)."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.deliveries) >= count, timeout):
                raise AssertionError(f"expected {count} deliveries, got {len(self.deliveries)}")
            return list(self.deliveries)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    import time

    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.cond:
                status = state.script.pop(0) if state.script else 200
                state.deliveries.append(Delivery({k.lower(): v for k, v in self.headers.items()},
                                                 body, time.monotonic()))
                state.cond.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/sandbox/"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def sandbox(receiver) -> Iterator[SandboxServer]:
    """A running sandbox whose webhooks go to `receiver`, with fast retries for tests."""
    config = SandboxConfig(api_key=API_KEY, webhooks=WebhookSettings(
        url=receiver.url, secret=WEBHOOK_SECRET, max_attempts=4, backoff_base=0.05, backoff_max=0.2,
        timeout=2.0))
    server = SandboxServer(Sandbox(config), port=0).start()
    yield server
    server.stop()


class Client:
    """requests against the sandbox with the API key, plus control-endpoint shortcuts."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {API_KEY}"

    def post(self, path: str, json_body=None, *, key: str | None = None, headers=None, **kwargs):
        merged = dict(headers or {})
        if key is not None:
            merged["Idempotency-Key"] = key
        return self.session.post(self.base_url + path, json=json_body, headers=merged, timeout=10, **kwargs)

    def get(self, path: str, **kwargs):
        return self.session.get(self.base_url + path, timeout=10, **kwargs)

    def charge(self, key: str | None = None, headers: dict | None = None, **params):
        body = {"amount": 1000, "currency": "usd", "source": "tok_visa", **params}
        return self.post("/v1/charges", body, key=key, headers=headers)

    def faults(self, body: dict):
        response = self.session.post(self.base_url + "/_control/faults", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def stats(self) -> dict:
        return self.get("/_control/stats").json()


@pytest.fixture
def client(sandbox) -> Client:
    return Client(sandbox.url)
