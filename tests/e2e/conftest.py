"""End-to-end stack: the real web server (gunicorn), a django-q2 worker, the webhook relay
and the sandbox, each its own process (the servers on free loopback ports), all pointed at
pytest-django's test database.

The processes are started once for this package (starting them per test would cost
seconds each) and stopped when its last test ends; every test gets a clean database
(`transactional_db`: committed writes, so the processes see what the test writes), a reset
sandbox and a fresh provider and API key. Processes are stopped however the tests end;
a failing test gets their logs in its report.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from django.conf import settings
from django.core.management import CommandError
from django.db import OperationalError, connection
from django.test import TransactionTestCase

from api.models import api_key_create
from integrations.credentials import credential_rotate
from integrations.models import Provider
from tests.support import processes
from tests.support.databases import database_url

# How long a flow may take to settle (a webhook round trip through the worker, a circuit
# reopening). Generous for a loaded CI machine; a passing run waits far less.
SETTLE_SECONDS = 20.0


@dataclass
class Stack:
    """The running processes and what a test needs to talk to them."""

    web_url: str
    sandbox_port: int
    sandbox_api_key: str
    webhook_secret: str
    env: dict[str, str]
    procs: processes.Processes
    sandbox: processes.Process | None = None
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def start_sandbox(self) -> None:
        """(Re)start the sandbox on its port; webhooks go to the web server."""
        env = {**self.env, "SANDBOX_API_KEY": self.sandbox_api_key,
               "SANDBOX_WEBHOOK_SECRET": self.webhook_secret,
               "SANDBOX_WEBHOOK_URL": f"{self.web_url}/webhooks/sandbox/"}
        self.sandbox = self.procs.add(processes.start_http_service(
            "sandbox", lambda fd: processes.manage("run_sandbox", "--fd", str(fd), "--webhook-backoff-base", "0.2",
                                                   "--webhook-backoff-max", "1"),
            ready_path="/_control/health", env=env, log_dir=self.procs.log_dir,
            sock=processes.listening_socket(port=self.sandbox_port)))

    def stop_sandbox(self) -> None:
        """Take the provider down: connections to its port are refused until restarted."""
        self.sandbox.stop()
        self.procs.started.remove(self.sandbox)
        self.sandbox = None

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.session.request(method, self.sandbox_url + path, json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def sandbox_api(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        """Call the sandbox's own API directly, as the provider's dashboard would act."""
        return self.session.request(method, self.sandbox_url + path, json=body, timeout=10,
                                    headers={"Authorization": f"Bearer {self.sandbox_api_key}"})


# Package scope: the worker and the relay must be gone before other packages' tests run, or
# they would take their events and queued tasks and run their schedules against the same
# test database.
@pytest.fixture(scope="package")
def e2e_stack(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Stack]:
    name = os.path.basename(str(connection.settings_dict["NAME"]))
    if not name.startswith("test"):
        # pytest-django creates the test database only for tests that ask for one; the
        # processes (and the flush after each test) must never touch a real database.
        pytest.fail(f"the end-to-end stack needs the test database, not {name!r}: "
                    "use it through the `flow` fixture (it requests transactional_db)")
    env = {
        "DATABASE_URL": database_url(),
        "DJANGO_DEBUG": "1",
        # The children must decrypt what the test process encrypts.
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "Q_WORKERS": "2",
    }
    if settings.REDIS_URL:  # the same broker and cache as the test process (else: the database's)
        env["REDIS_URL"] = settings.REDIS_URL
    procs = processes.Processes(tmp_path_factory.mktemp("e2e-logs"))
    web_sock = processes.listening_socket()
    sandbox_sock = processes.listening_socket()
    sandbox_port = sandbox_sock.getsockname()[1]
    sandbox_sock.close()  # only reserved the number; start_sandbox binds it again
    stack = Stack(
        web_url=f"http://127.0.0.1:{web_sock.getsockname()[1]}",
        sandbox_port=sandbox_port,
        sandbox_api_key="sk_test_" + secrets.token_urlsafe(16),
        webhook_secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        env=env,
        procs=procs,
    )
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_checkpoint_sqlite, django_db_blocker)
        cleanup.callback(procs.stop_all)
        cleanup.enter_context(_flush_retried_on_lock_conflicts())
        stack.start_sandbox()
        procs.add(processes.start_http_service(
            "web", lambda fd: [str(processes.BIN / "gunicorn"), "config.wsgi:application",
                               "--bind", f"fd://{fd}", "--workers", "2", "--threads", "4",
                               "--graceful-timeout", "3", "--timeout", "60", "--access-logfile", "-"],
            ready_path="/health/live", env=env, log_dir=procs.log_dir, sock=web_sock))
        procs.add(processes.start("worker", processes.manage("qcluster"), env=env,
                                  stop_signal=signal.SIGINT, log_dir=procs.log_dir))
        # Hands stored webhook events to the worker (SIGTERM: it finishes its batch first).
        procs.add(processes.start("relay", processes.manage("webhook_relay"), env=env,
                                  stop_signal=signal.SIGTERM, log_dir=procs.log_dir))
        yield stack


def _checkpoint_sqlite(django_db_blocker) -> None:
    """Fold SQLite's write-ahead log back into the database once the processes are gone.

    A process killed at exit leaves `-wal`/`-shm` files behind when it was the last to
    hold the database; pytest-django then deletes only the main file, and the next run's
    fresh test database would meet a stale log. The last connection closed cleanly
    removes them."""
    if connection.vendor != "sqlite":
        return
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()


@contextlib.contextmanager
def _flush_retried_on_lock_conflicts() -> Iterator[None]:
    """Make `transactional_db`'s final flush retry when it collides with a child process's
    transaction (a deadlock on PostgreSQL, a busy file on SQLite): the worker may be running
    a task or a schedule at that very moment. Without this, one unlucky collision leaves
    the tables full and every later test fails on leftovers."""
    original = TransactionTestCase._fixture_teardown

    def fixture_teardown(self):
        for attempt in range(1, 6):
            try:
                return original(self)
            except (CommandError, OperationalError):
                if attempt == 5:
                    raise
                time.sleep(0.2 * attempt)

    TransactionTestCase._fixture_teardown = fixture_teardown
    try:
        yield
    finally:
        TransactionTestCase._fixture_teardown = original


@dataclass
class Flow:
    """One test's view: the API as a consumer, the sandbox's controls, and waiting helpers."""

    stack: Stack
    provider: Provider
    api: requests.Session

    def charge(self, key: str, *, source: str = "tok_visa", amount: int = 2000, **extra) -> requests.Response:
        body = {"amount": amount, "currency": "USD", "source": source, "provider": self.provider.slug, **extra}
        return self.api.post(f"{self.stack.web_url}/api/v1/charges", json=body,
                             headers={"Idempotency-Key": key}, timeout=30)

    def get_charge(self, charge_id: str) -> dict:
        response = self.api.get(f"{self.stack.web_url}/api/v1/charges/{charge_id}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_charge(self, charge_id: str, status: str, timeout: float = SETTLE_SECONDS) -> dict:
        last = {}

        def reached():
            nonlocal last
            last = self.get_charge(charge_id)
            return last if last["status"] == status else None

        try:
            return processes.wait_until(reached, timeout=timeout, interval=0.1,
                                        what=f"charge {charge_id} to be {status}")
        except TimeoutError as err:
            raise AssertionError(f"{err}; last seen: {last}") from err

    def faults(self, body: dict) -> dict:
        return self.stack.control("POST", "/_control/faults", body)

    def sandbox_stats(self) -> dict:
        return self.stack.control("GET", "/_control/stats")


def _sandbox_idle(stack: Stack) -> bool:
    if stack.sandbox is None or not stack.sandbox.alive():
        return True
    hooks = stack.control("GET", "/_control/stats")["webhooks"]
    return hooks["pending"] == 0 and hooks["in_flight"] == 0


@pytest.fixture
def flow(e2e_stack, transactional_db) -> Iterator[Flow]:
    if e2e_stack.sandbox is None or not e2e_stack.sandbox.alive():
        e2e_stack.start_sandbox()  # a previous test took it down and failed before restarting
    e2e_stack.control("POST", "/_control/reset")
    provider = Provider.objects.create(
        slug="sandbox", name="Sandbox", kind="sandbox", base_url=e2e_stack.sandbox_url,
        # Fast policy so failure flows finish in seconds.
        connect_timeout=0.5, read_timeout=3.0, max_attempts=3, backoff_base=0.05, backoff_max=0.2,
        deadline=8.0, circuit_failure_threshold=5, circuit_open_seconds=1.0)
    credential_rotate(provider=provider, purpose="api_key", value=e2e_stack.sandbox_api_key)
    credential_rotate(provider=provider, purpose="webhook_secret", value=e2e_stack.webhook_secret)
    _, raw_key = api_key_create(consumer_name="e2e-shop")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {raw_key}"
    yield Flow(e2e_stack, provider, api)
    # Let deliveries in flight land now, not in the next test's database.
    with contextlib.suppress(Exception):
        processes.wait_until(lambda: _sandbox_idle(e2e_stack), timeout=5, what="webhooks to settle")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed end-to-end test carries the processes' logs, where the cause usually is."""
    report = yield
    stack = getattr(item, "funcargs", {}).get("e2e_stack")
    if report.failed and stack is not None:
        report.sections.append(("process logs", stack.procs.logs()))
    return report
