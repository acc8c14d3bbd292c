"""The Idempotency-Key store: a POST runs at most once per key, later ones replay its answer."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable

from sandbox.messages import ApiError, SandboxRequest, SandboxResponse, invalid

MAX_KEY_LENGTH = 255


class IdempotencyStore:
    """Answers by key, kept until reset; shares the sandbox's lock for its own state."""

    def __init__(self, lock: threading.Lock):
        self._lock = lock
        self.reset()

    def reset(self) -> None:
        """Forget every key (called with the lock held, or before the store is shared)."""
        self._answers: dict[str, tuple[str, int, str]] = {}  # key -> (fingerprint, status, body)
        # Requests with the same key run one at a time (a retry waits for the first attempt
        # and then replays it); other keys never wait for each other.
        self._key_locks: dict[str, threading.Lock] = {}
        self.replays = 0

    def run(self, request: SandboxRequest, data: dict, key: str,
            execute: Callable[[], SandboxResponse]) -> SandboxResponse:
        """`execute()` once for `key`; the same key and parameters replay the stored answer,
        other parameters with that key are a 400. Only requests that began executing are
        stored (a 400 from validation is not, so the key stays usable), as Stripe does."""
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise invalid(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
                          param="Idempotency-Key")
        fingerprint = hashlib.sha256(
            json.dumps([request.method, request.path, data], sort_keys=True).encode()).hexdigest()
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                stored = self._answers.get(key)
            if stored:
                return self._replay(key, fingerprint, *stored)
            try:
                response = execute()
            except ApiError as err:
                if err.status == 400:
                    raise  # refused before executing: not stored
                response = err.response()  # a decline executed: stored like a success
            with self._lock:
                self._answers[key] = (fingerprint, response.status, json.dumps(response.body))
            response.headers["Idempotency-Key"] = key
            return response

    def _replay(self, key: str, fingerprint: str, stored_fingerprint: str, status: int,
                body: str) -> SandboxResponse:
        if stored_fingerprint != fingerprint:
            raise ApiError(400, "idempotency_error",
                           "Keys for idempotent requests can only be used with the same "
                           "parameters they were first used with.", code="idempotency_key_reused")
        with self._lock:
            self.replays += 1
        return SandboxResponse(status, json.loads(body),
                               {"Idempotent-Replayed": "true", "Idempotency-Key": key})
