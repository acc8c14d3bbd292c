"""Claiming, finishing and releasing idempotency keys. Endpoints use `idempotent` (decorators.py).

The claim is one atomic step: an INSERT ... ON CONFLICT DO NOTHING that the unique
constraint on (consumer, key) lets exactly one request win. Every later change of the row
is a conditional UPDATE (compare-and-set on the lock token), and the only facts read
before deciding (the fingerprint, a stored answer) never change once written.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from idempotency.conf import idempotency_settings
from idempotency.exceptions import IdempotencyKeyInUse, IdempotencyKeyReused, IdempotencyLockLost
from idempotency.models import IdempotencyRecord, RecoveryPoint

# A claim that loses the INSERT and then finds the row gone (a 400 released it) tries again.
_CLAIM_ROUNDS = 3


def request_fingerprint(*, method: str, path: str, body: object) -> str:
    """SHA-256 of method, path and the body as canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.sha256()
    for part in (method.upper(), path, canonical):
        # surrogatepass: the parser refuses lone surrogates, but a fingerprint must never be
        # the thing that fails.
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def key_in_use() -> IdempotencyKeyInUse:
    """The 409 for a key that another request holds, with IDEMPOTENCY_RETRY_AFTER_SECONDS."""
    retry_after = int(idempotency_settings.RETRY_AFTER_SECONDS)
    return IdempotencyKeyInUse(headers={"Retry-After": str(retry_after)})


@dataclass(frozen=True)
class Replay:
    """A stored answer to send again."""

    status: int
    body: str


@dataclass
class Execution:
    """The right to execute a request under a key: handed to the endpoint as `request.idempotency`.

    `recovery_point` and `resource_id` say where a previous attempt stopped; the endpoint
    moves them on with `checkpoint()` inside the same transaction as its own writes.
    """

    record_id: int
    token: str
    recovery_point: str
    resource_id: str
    resumed: bool = False

    def checkpoint(self, point: str, *, resource_id: str | None = None) -> None:
        """Record progress. Call it inside the transaction that made the progress durable.

        Raises IdempotencyLockLost when another request has taken the key over, which
        rolls back the caller's transaction: only one holder ever moves a record on.
        """
        values = {"recovery_point": point, "updated": timezone.now()}
        if resource_id is not None:
            values["resource_id"] = resource_id
        updated = IdempotencyRecord.objects.filter(pk=self.record_id, lock_token=self.token).update(**values)
        if not updated:
            raise IdempotencyLockLost(f"idempotency record {self.record_id} was taken over")
        self.recovery_point = point
        if resource_id is not None:
            self.resource_id = resource_id


def _existing(records) -> IdempotencyRecord | None:
    # At most one row (unique key): no ORDER BY needed.
    return next(iter(records.only("fingerprint", "response_status", "response_body").order_by()[:1]), None)


def _reject_or_replay(record: IdempotencyRecord, fingerprint: str) -> Replay:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if record.response_status is not None:
        return Replay(status=record.response_status, body=record.response_body)
    raise key_in_use()


def _insert_or_nothing(*, consumer_id: int, key: str, method: str, path: str, fingerprint: str,
                       token: str, now) -> int | None:
    """INSERT ... ON CONFLICT (consumer, key) DO NOTHING RETURNING id: the new row's id, or
    None when the key exists. One statement, so exactly one of any number of concurrent
    requests (in any process) gets an id; the others wait for its commit and get None.
    (PostgreSQL and SQLite >= 3.35 both speak this dialect.)"""
    meta = IdempotencyRecord._meta
    values = {
        "consumer_id": consumer_id, "key": key, "method": method, "path": path, "fingerprint": fingerprint,
        "locked_at": now, "lock_token": token, "recovery_point": RecoveryPoint.STARTED, "resource_id": "",
        "response_body": "", "created": now, "updated": now,
    }
    columns = [meta.get_field(name if name != "consumer_id" else "consumer").column for name in values]
    params = [connection.ops.adapt_datetimefield_value(v) if hasattr(v, "tzinfo") else v for v in values.values()]
    quote = connection.ops.quote_name
    # Identifiers come from the model's metadata, values travel as parameters.
    sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
           f"VALUES ({', '.join(['%s'] * len(columns))}) "
           f"ON CONFLICT ({quote('consumer_id')}, {quote('key')}) DO NOTHING RETURNING {quote('id')}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def idempotency_claim(*, consumer_id: int, key: str, method: str, path: str, fingerprint: str) -> Execution | Replay:
    """Claim `key` for this request, or say what to answer instead.

    Returns an Execution (new, or a takeover of a free or stale record, resumable from
    its recovery point) or a Replay of the stored answer. Raises IdempotencyKeyReused
    (422) for a different request under the same key and IdempotencyKeyInUse (409)
    while another request holds it.
    """
    records = IdempotencyRecord.objects.filter(consumer_id=consumer_id, key=key)
    method = method.upper()
    for _ in range(_CLAIM_ROUNDS):
        now = timezone.now()
        token = secrets.token_hex(16)
        record_id = _insert_or_nothing(consumer_id=consumer_id, key=key, method=method, path=path,
                                       fingerprint=fingerprint, token=token, now=now)
        if record_id is not None:
            return Execution(record_id=record_id, token=token, recovery_point=RecoveryPoint.STARTED,
                             resource_id="")

        existing = _existing(records)
        if existing is None:
            continue  # released (its request ended 400) since our INSERT: claim again
        if existing.response_status is not None or existing.fingerprint != fingerprint:
            return _reject_or_replay(existing, fingerprint)  # a finished row never changes again

        # Unfinished: take it over if nobody holds it (released after a 503) or its holder
        # went silent for longer than the lock timeout (crashed). A conditional UPDATE, so
        # of several retries exactly one wins.
        taken = records.filter(
            Q(locked_at__isnull=True) | Q(locked_at__lt=now - timedelta(seconds=idempotency_settings.LOCK_TIMEOUT_SECONDS)),
            fingerprint=fingerprint, response_status__isnull=True,
        ).update(locked_at=now, lock_token=token, updated=now)
        if taken:
            record = records.only("recovery_point", "resource_id").get()
            return Execution(record_id=record.pk, token=token, recovery_point=record.recovery_point,
                             resource_id=record.resource_id, resumed=True)
        existing = _existing(records)
        if existing is not None:
            return _reject_or_replay(existing, fingerprint)
    raise key_in_use()


def idempotency_finish(*, execution: Execution, status: int, body: str) -> bool:
    """Store the answer and free the key; from now on every duplicate is a replay.

    Returns False when the lock was lost to a takeover (that request stores its own answer).
    """
    return bool(
        IdempotencyRecord.objects.filter(pk=execution.record_id, lock_token=execution.token).update(
            response_status=status, response_body=body, recovery_point=RecoveryPoint.FINISHED,
            locked_at=None, lock_token="", updated=timezone.now(),
        )
    )


def idempotency_release(*, execution: Execution) -> None:
    """Free the key without storing an answer (a 400, a 503, an unexpected error).

    Work that never started leaves nothing behind, so the key is new again; work that
    got somewhere keeps its recovery point, and the next request with the same key
    (and the same body) resumes it.
    """
    mine = IdempotencyRecord.objects.filter(pk=execution.record_id, lock_token=execution.token)
    if execution.recovery_point == RecoveryPoint.STARTED:
        mine.delete()
    else:
        mine.update(locked_at=None, lock_token="", updated=timezone.now())


def idempotency_purge_expired(*, batch_size: int | None = None, max_batches: int | None = None) -> int:
    """Delete records older than the retention, in batches; returns how many went."""
    batch_size = batch_size or int(idempotency_settings.PURGE_BATCH_SIZE)
    cutoff = timezone.now() - timedelta(seconds=idempotency_settings.RETENTION_SECONDS)
    total, batches = 0, 0
    while max_batches is None or batches < max_batches:
        ids = list(IdempotencyRecord.objects.filter(created__lt=cutoff)
                   .order_by("created").values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        total += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
        batches += 1
    return total
