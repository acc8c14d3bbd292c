"""Webhooks back to the service: Standard Webhooks signatures, background delivery, retries.

Events are delivered by a dispatcher thread and a small pool, never by the request
thread, so a slow receiver cannot slow the API down. A receiver answering non-2xx (or
not at all) gets the same event again later, with exponential backoff, up to a cap.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

logger = logging.getLogger("sandbox.webhooks")


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.

    The key is the base64-decoded part of a `whsec_...` secret (Standard Webhooks).
    """
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def validate_secret(secret: str) -> None:
    """Raise ValueError unless `secret` is a usable `whsec_<base64>` secret."""
    if not secret.startswith("whsec_"):
        raise ValueError("the webhook secret must look like whsec_<base64>")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError as err:
        raise ValueError("the webhook secret's part after whsec_ must be base64") from err
    if not key:
        raise ValueError("the webhook secret is empty after whsec_")


@dataclass
class WebhookSettings:
    """Where and how to deliver; read at each attempt so `/_control/config` applies at once."""

    url: str = ""
    secret: str = ""
    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    timeout: float = 5.0


@dataclass
class Delivery:
    event_id: str
    event_type: str
    body: bytes
    attempt: int = 1


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    deliveries: list[Delivery] = field(compare=False)


class WebhookSender:
    """Queues events and delivers them; `stats()` tells tests what happened.

    A job holds one or more deliveries sent one after another in that order (that is
    how a reordered batch keeps its order); each failed delivery is retried on its own.
    """

    def __init__(
        self,
        settings: Callable[[], WebhookSettings],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        workers: int = 4,
    ):
        self._settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._workers = workers
        self._cond = threading.Condition()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._held: list[Delivery] = []
        self._held_target = 0
        self._held_deadline = 0.0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        # One HTTP session (connection pool) per delivery thread: Session is not thread-safe.
        self._local = threading.local()
        self._reset_stats()

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="sandbox-webhook")
        self._thread = threading.Thread(target=self._dispatch, name="sandbox-webhook-dispatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=5)
        if self._pool:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def reset(self) -> None:
        """Forget queued and held deliveries and the counters (in-flight ones still finish)."""
        with self._cond:
            self._heap.clear()
            self._held.clear()
            self._held_target = 0
            self._reset_stats()

    # --- queueing --------------------------------------------------------------------
    def enqueue(self, event: dict, *, duplicate: bool = False, delay: float = 0.0,
                reorder: tuple[int, float] | None = None) -> None:
        """Queue `event` for delivery, possibly twice, late, or into a reordered batch.

        `reorder=(n, max_wait)` starts holding events until n are held (or max_wait
        seconds pass) and then delivers them newest first.
        """
        body = json.dumps(event, separators=(",", ":")).encode()
        copies = [Delivery(event["id"], event["type"], body) for _ in range(2 if duplicate else 1)]
        with self._cond:
            self._counts["enqueued"] += 1
            if reorder and not self._held_target:
                self._held_target, self._held_deadline = reorder[0], self._clock() + reorder[1]
            if self._held_target:
                self._held.extend(copies)
                if len(self._held) >= self._held_target:
                    self._release_held()
            else:
                for copy in copies:
                    self._push([copy], self._clock() + delay)
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued, held or being delivered (for tests and reset)."""
        deadline = self._clock() + timeout
        with self._cond:
            while self._heap or self._held or self._in_flight:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    def stats(self) -> dict:
        with self._cond:
            return {
                **self._counts,
                "pending": sum(len(job.deliveries) for job in self._heap) + len(self._held),
                "in_flight": self._in_flight,
                "log": list(self._log),
            }

    # --- internals -------------------------------------------------------------------
    def _reset_stats(self) -> None:
        self._counts = {"enqueued": 0, "attempts": 0, "delivered": 0, "failed_attempts": 0,
                        "given_up": 0, "skipped_no_url": 0}
        self._log: list[dict] = []

    def _push(self, deliveries: list[Delivery], due: float) -> None:
        heapq.heappush(self._heap, _Job(due, next(self._seq), deliveries))

    def _http(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _release_held(self) -> None:
        held, self._held, self._held_target = self._held, [], 0
        self._push(list(reversed(held)), self._clock())

    def _dispatch(self) -> None:
        with self._cond:
            while not self._stopping:
                now = self._clock()
                if self._held_target and now >= self._held_deadline:
                    self._release_held()
                if self._heap and self._heap[0].due <= now:
                    job = heapq.heappop(self._heap)
                    self._in_flight += 1
                    self._pool.submit(self._run, job)
                    continue
                waits = [self._heap[0].due - now] if self._heap else []
                if self._held_target:
                    waits.append(self._held_deadline - now)
                self._cond.wait(max(0.0, min(waits)) if waits else None)

    def _run(self, job: _Job) -> None:
        try:
            for delivery in job.deliveries:
                self._attempt(delivery)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _attempt(self, delivery: Delivery) -> None:
        settings = self._settings()
        if not settings.url:
            with self._cond:
                self._counts["skipped_no_url"] += 1
            return
        timestamp = int(self._wall_clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "provider-gateway-sandbox/1",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret=settings.secret, msg_id=delivery.event_id,
                                      timestamp=timestamp, body=delivery.body),
        }
        status: int | None = None
        error = ""
        try:
            response = self._http().post(settings.url, data=delivery.body, headers=headers,
                                          timeout=settings.timeout, allow_redirects=False)
            status = response.status_code
        except requests.RequestException as err:
            error = type(err).__name__
        ok = status is not None and 200 <= status < 300
        attempt = delivery.attempt
        with self._cond:
            self._counts["attempts"] += 1
            self._log.append({"event_id": delivery.event_id, "type": delivery.event_type,
                              "attempt": delivery.attempt, "status": status, "error": error})
            del self._log[:-1000]
            if ok:
                self._counts["delivered"] += 1
            else:
                self._counts["failed_attempts"] += 1
                if delivery.attempt >= settings.max_attempts:
                    self._counts["given_up"] += 1
                else:
                    backoff = min(settings.backoff_max, settings.backoff_base * 2 ** (delivery.attempt - 1))
                    delivery.attempt += 1
                    self._push([delivery], self._clock() + backoff)
                    self._cond.notify_all()
        logger.info("webhook %s %s attempt %s -> %s", delivery.event_type, delivery.event_id,
                    attempt, status or error)
