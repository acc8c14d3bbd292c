"""What the outbound client leaves behind: a JSON log line per attempt, an OutboundCall row
per call, and the purge of old rows. Neither ever holds a header, a body or a query value."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

from django.utils import timezone

from config import request_id
from integrations.conf import integration_settings

logger = logging.getLogger("integrations.outbound")


def safe_path(path: str, params: dict | None = None) -> tuple[str, list[str]]:
    """The path without its query string, and the sorted names (never values) of its query
    parameters: values can be emails, addresses or tokens."""
    parts = urlsplit(path)
    names = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    names.update(str(k) for k in (params or {}))
    return parts.path or "/", sorted(names)


def log_attempt(*, provider: str, operation: str, method: str, path: str, query_keys: list[str],
                attempt: int, status: int | None, error_code: str | None, latency_ms: float,
                retry_in: float | None = None) -> None:
    """One structured line for one HTTP attempt (or an attempt refused before any socket)."""
    level = logging.INFO if error_code is None else logging.WARNING
    if not logger.isEnabledFor(level):
        return
    logger.log(level, "outbound attempt", extra={
        "request_id": request_id.current(),
        "provider": provider,
        "operation": operation,
        "method": method,
        "path": path,
        "query_keys": query_keys,
        "attempt": attempt,
        "status": status,
        "error_code": error_code,
        "latency_ms": round(latency_ms, 2),
        "retry_in": None if retry_in is None else round(retry_in, 3),
    })


def record_call(*, provider, operation: str, method: str, path: str, result) -> None:
    """Store an OutboundCall row for the admin, as INTEGRATIONS_RECORD_CALLS says: True (or
    "sync") inserts it now; "batch" hands it to a background writer (see _BatchWriter);
    False keeps nothing."""
    mode = integration_settings.RECORD_CALLS
    if not mode:
        return
    row = {
        "provider_id": provider.pk, "operation": operation[:100], "method": method, "path": path[:300],
        "ok": result.ok, "status": result.status, "error_code": result.error_code or "",
        "attempts": result.attempts, "latency_ms": round(result.latency_ms, 2),
        "request_id": (request_id.current() or "")[:128], "created": timezone.now(),
    }
    if mode == "batch":
        _writer.add(row)
        return
    from integrations.models import OutboundCall

    OutboundCall.objects.create(**row)


class _BatchWriter:
    """Buffers OutboundCall rows in memory and inserts them in bulk from a daemon thread,
    every INTERVAL seconds (and at exit), so a call does not wait for a database commit.

    The price: rows show up in the admin up to INTERVAL seconds late, and a process killed
    with SIGKILL loses the rows of its last interval. Past MAX_PENDING rows (database down)
    the oldest are dropped and counted in the log, never blocking calls.
    """

    INTERVAL = 1.0
    MAX_PENDING = 10_000

    def __init__(self):
        self._rows: list[dict] = []
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._wake = threading.Event()
        self.dropped = 0

    def add(self, row: dict) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use, or we are a forked worker: own thread
                self._pid = os.getpid()
                self._rows = []
                threading.Thread(target=self._run, name="outbound-call-writer", daemon=True).start()
            self._rows.append(row)
            if len(self._rows) > self.MAX_PENDING:
                del self._rows[0]
                self.dropped += 1

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            self._wake.wait(self.INTERVAL)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Insert what is pending now (from any thread); returns how many rows went in."""
        from django.db import connection

        from integrations.models import OutboundCall

        with self._lock:
            rows, self._rows = self._rows, []
            dropped, self.dropped = self.dropped, 0
        if dropped:
            logger.warning("outbound call records dropped", extra={"dropped": dropped})
        if not rows:
            return 0
        try:
            OutboundCall.objects.bulk_create([OutboundCall(**row) for row in rows], batch_size=500)
            return len(rows)
        except Exception:  # noqa: BLE001 - records are for the admin; never crash the writer
            logger.exception("could not write outbound call records", extra={"rows": len(rows)})
            return 0
        finally:
            if threading.current_thread() is not threading.main_thread():
                connection.close()


_writer = _BatchWriter()
atexit.register(_writer.flush)


def flush_records() -> int:
    """Write the batch writer's pending rows now (tests, shutdown hooks)."""
    return _writer.flush()


def outbound_calls_purge(*, older_than: timedelta | None = None, batch_size: int = 5000) -> int:
    """Delete OutboundCall rows older than the retention, in batches (short locks). Returns
    how many went."""
    from integrations.models import OutboundCall

    if older_than is None:
        older_than = timedelta(days=integration_settings.OUTBOUND_CALL_RETENTION_DAYS)
    cutoff = timezone.now() - older_than
    total = 0
    while True:
        ids = list(OutboundCall.objects.filter(created__lt=cutoff).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        total += OutboundCall.objects.filter(pk__in=ids).delete()[0]
