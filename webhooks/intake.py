"""Intake: verify a delivery on its raw bytes, then store each event once and enqueue it."""

from __future__ import annotations

import logging
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import Value
from django.db.models.sql import InsertQuery
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from integrations.credentials import credentials_valid_until
from integrations.models import Provider
from webhooks import metrics, verify_cache
from webhooks.errors import IntakeError, InvalidSignature, ProviderNotFound
from webhooks.models import WebhookEvent
from webhooks.queue import enqueue_on_commit
from webhooks.schemes import Headers, Scheme, scheme_for
from webhooks.schemes.base import plain_ascii

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeResult:
    """What one delivery produced: new event row ids and how many were already stored."""

    stored: list[int]
    duplicates: int

    @property
    def duplicate(self) -> bool:
        """The contract's `duplicate`: true when the delivery brought nothing new."""
        return not self.stored and self.duplicates > 0


@dataclass(frozen=True)
class IntakeTarget:
    """What verifying a provider's deliveries needs: the provider, its scheme, and its
    valid secrets with the end of each one's validity (None: the current one).

    The secrets are left out of repr(), so an error page listing a frame's variables
    does not show them.
    """

    provider: Provider
    scheme: Scheme
    secrets: tuple[tuple[str, datetime | None], ...] = field(repr=False)

    def secrets_valid_at(self, at: datetime) -> list[str]:
        """The secrets valid at `at`, newest first: a grace period ends on time even
        when this target was loaded before it ended."""
        return [value for value, until in self.secrets if until is None or until > at]


def intake_target(slug: str) -> IntakeTarget:
    """The enabled provider with this slug and its verification secrets, through the
    verification cache; ProviderNotFound (404) otherwise."""

    def load() -> IntakeTarget:
        provider = (Provider.objects.filter(slug=slug, enabled=True)
                    .only("id", "slug", "kind", "environment", "enabled", "webhook_tolerance").first())
        scheme = scheme_for(provider.kind) if provider is not None else None
        if scheme is None:
            raise ProviderNotFound()  # raised, so never cached
        secrets = credentials_valid_until(provider=provider, purpose=scheme.secret_purpose)
        return IntakeTarget(provider=provider, scheme=scheme, secrets=tuple(secrets))

    return verify_cache.cached(("target", slug), load)


def webhook_receive(*, target: IntakeTarget, headers: Headers, body: bytes,
                    request_id: str | None = None, now: float | None = None) -> IntakeResult:
    """Verify and store one delivery for `target` (from `intake_target`); raises an
    IntakeError (nothing stored) when refused.

    `headers` must have lower-case names. Each new event is enqueued when the
    transaction commits; a duplicate (same provider and event id) enqueues nothing.
    """
    provider, scheme = target.provider, target.scheme
    received = timezone.now()
    try:
        _verify(target=target, headers=headers, body=body, now=time.time() if now is None else now, at=received)
        events = scheme.parse(headers=headers, body=body)
    except IntakeError as err:
        # Never the body or the signature in the log: only who and why.
        metrics.intake_total.labels(provider.slug, err.code).inc()
        logger.warning("webhook refused", extra={"provider": provider.slug, "reason": err.code})
        raise

    stored, duplicates = [], 0
    kept_headers = scheme.headers_to_store(headers)
    for parsed in events:
        # Outside a transaction each INSERT commits on its own, in one round trip; inside
        # one (ATOMIC_REQUESTS, a caller's block) a savepoint keeps a duplicate from
        # breaking it. Either way each event stands alone: one duplicate in a batch does
        # not undo the others.
        guard = transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()
        try:
            with guard:
                event_pk = _insert_event(
                    provider_id=provider.pk, event_id=parsed.event_id, type=parsed.type, raw_body=body,
                    payload=parsed.payload, headers=kept_headers, request_id=request_id or "",
                    received_at=received, enqueued_at=received,
                    payload_is_body=parsed.payload_is_body,
                )
        except IntegrityError:
            # The unique (provider, event_id) constraint decides, even for simultaneous
            # deliveries: the loser waits for the winner's commit and lands here.
            if not WebhookEvent.objects.filter(provider=provider, event_id=parsed.event_id).exists():
                raise  # some other integrity problem: not a duplicate, do not hide it
            duplicates += 1
            continue
        # Runs at once in autocommit, else after the surrounding transaction commits.
        enqueue_on_commit(event_pk=event_pk, request_id=request_id, confirm=False)
        stored.append(event_pk)
    if stored:
        metrics.intake_total.labels(provider.slug, "accepted").inc(len(stored))
    if duplicates:
        metrics.intake_total.labels(provider.slug, "duplicate").inc(duplicates)
    return IntakeResult(stored=stored, duplicates=duplicates)


# The plaintext secrets appear as a variable only in this frame (and the scheme's), which
# has returned before anything else can fail, so a traceback of a later error cannot show
# them (elsewhere they sit inside an IntakeTarget, whose repr leaves them out); error
# reports (mailed, logged with variables) hide them here too.
@sensitive_variables("secrets")
def _verify(*, target: IntakeTarget, headers: Headers, body: bytes, now: float, at: datetime) -> None:
    """`now`: the clock the signed timestamp is checked against (seconds); `at`: the time
    the secrets must be valid at."""
    provider, scheme = target.provider, target.scheme
    secrets = target.secrets_valid_at(at)
    if not secrets:
        logger.error("webhook provider has no valid %s credential", scheme.secret_purpose,
                     extra={"provider": provider.slug})
        raise InvalidSignature()
    scheme.verify(headers=headers, body=body, secrets=secrets, tolerance=provider.webhook_tolerance, now=now)


# --- storing an event: one INSERT, compiled once ----------------------------------------
# `WebhookEvent.objects.create()` rebuilds and recompiles the same INSERT for every event
# and prepares all 19 columns; in the benchmark's CPU profile that was ~40% of the whole
# request. The statement below is compiled by the ORM once per database connection
# alias, and names only the columns a delivery sets: every other column takes its
# database default (`db_default` on the model, or NULL), which `_compile` checks equals
# the model default, else the ORM is used as is. Each value is prepared by its field
# (get_db_prep_save), as the ORM does. No signal is lost: nothing listens to
# WebhookEvent saves.

_PER_EVENT = ("provider_id", "event_id", "type", "raw_body", "payload", "headers", "request_id",
              "received_at", "enqueued_at")


@dataclass(frozen=True)
class _CompiledInsert:
    sql: str
    fields: tuple  # the per-event fields, in statement order


# A number in exponent form (1e5, 2.5E-3) or a very long one: jsonb keeps numbers as
# `numeric`, so 1e5 would read back as the int 100000 (Python: the float 100000.0) and
# 1e-20000 overflows numeric (Python: 0.0). Matched anywhere, strings included: a false
# match only means the payload is encoded again, as before.
_NUMERIC_DIFFERS = re.compile(rb"[0-9][eE][+-]?[0-9]|[0-9.]{40}")


def _body_as_jsonb(body: bytes):
    from psycopg.types.json import Jsonb

    return Jsonb(body.decode(), dumps=str)  # psycopg sends dumps(obj): the text itself


def _text_is_payload(body: bytes) -> bool:
    """Whether the body's own text, stored as jsonb, reads back as what json.loads made
    of it: plain ASCII (no UTF-16, no escapes to re-check) and no number jsonb would
    store differently."""
    return plain_ascii(body) and _NUMERIC_DIFFERS.search(body) is None


_compiled: dict[tuple[str, str], _CompiledInsert | None] = {}


def _database_default_is_model_default(field) -> bool:
    """Whether leaving `field` out of the INSERT stores what objects.create() would."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return False
    if field.has_default() and callable(field.default):
        return False  # computed per row
    model_default = field.get_default() if field.has_default() else None
    if field.has_db_default():
        db_default = field.db_default.value if isinstance(field.db_default, Value) else field.db_default
        if hasattr(db_default, "resolve_expression"):
            return False  # an expression (Now(), ...): computed by the database
        return db_default == model_default
    return field.null and model_default is None


def _schema_has_defaults(conn, fields) -> bool:
    """Whether the table itself gives each left-out column a default or NULL: not while
    the code runs ahead of its migration (deployed before `migrate`)."""
    with conn.cursor() as cursor:
        columns = {c.name: c for c in conn.introspection.get_table_description(cursor, WebhookEvent._meta.db_table)}
    return all(f.column in columns and (columns[f.column].null_ok or columns[f.column].default is not None)
               for f in fields)


def _compile(conn) -> _CompiledInsert | None:
    """The INSERT ... RETURNING id for this connection, or None to use the ORM as is (a
    backend that cannot return the id, or a column left out whose database default is
    not its model default)."""
    meta = WebhookEvent._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated]
    per_event = [f for f in fields if f.attname in _PER_EVENT]
    if not conn.features.can_return_columns_from_insert or len(per_event) != len(_PER_EVENT):
        return None
    left_out = [f for f in fields if f.attname not in _PER_EVENT]
    if not all(_database_default_is_model_default(f) for f in left_out):
        return None
    if not _schema_has_defaults(conn, left_out):
        logger.warning("webhooks: the database lacks the column defaults of migration webhooks 0002; "
                       "events are stored with the slower ORM INSERT until this process restarts "
                       "after `manage.py migrate`")
        return None
    template = WebhookEvent(**{name: None for name in _PER_EVENT})
    query = InsertQuery(WebhookEvent)
    query.insert_values(per_event, [template])
    compiler = query.get_compiler(connection=conn)
    compiler.returning_fields = [meta.pk]
    [(sql, params)] = compiler.as_sql()
    if len(params) != len(per_event):  # one plain placeholder per column, or do not guess
        return None
    return _CompiledInsert(sql=sql, fields=tuple(per_event))


def _insert_event(*, payload_is_body: bool = False, **values) -> int:
    """INSERT one WebhookEvent with these per-event `values` (the names in _PER_EVENT),
    every other column at its default; returns the new id. Raises IntegrityError (a
    duplicate) exactly as `objects.create()` would.

    `payload_is_body`: `values["payload"]` is `values["raw_body"]` parsed. On PostgreSQL
    a body that passes `_text_is_payload` then goes in as its own JSON text, rather than
    the payload encoded again (json.dumps of the whole body, per delivery). (Not on
    SQLite: it would keep the text verbatim, duplicate keys and all, and its JSON
    functions read the first of two equal keys where Python reads the last.)
    """
    conn = connections[DEFAULT_DB_ALIAS]  # the wrapper itself, not the per-access proxy
    key = (conn.alias, conn.vendor)
    if key not in _compiled:
        _compiled[key] = _compile(conn)
    compiled = _compiled[key]
    if compiled is None:
        return WebhookEvent.objects.create(**values).pk
    body_as_text = payload_is_body and conn.vendor == "postgresql" and _text_is_payload(values["raw_body"])
    params = [_body_as_jsonb(values["raw_body"]) if body_as_text and field.attname == "payload"
              else field.get_db_prep_save(values[field.attname], connection=conn)
              for field in compiled.fields]
    with _insert_cursor(conn) as cursor:
        cursor.execute(compiled.sql, params)
        return conn.ops.fetch_returned_insert_columns(cursor, ())[0]


def _insert_cursor(conn):
    """A cursor for the INSERT: Django's own, but on PostgreSQL one that binds server-side.

    Django's psycopg cursors bind client-side: each value is quoted into the SQL text in
    Python, and PostgreSQL parses and plans the statement anew every time. A
    server-binding cursor sends the values apart, and once psycopg has prepared the
    statement (from its fifth run on a connection, unless DATABASE_PREPARED_STATEMENTS=off)
    PostgreSQL only executes it: ~40 µs less here and ~50 µs less in PostgreSQL per
    delivery (bench/RESULTS.md). The cursor is obtained the way Django's `cursor()` does it
    (health check, connection, wrapper), so execute wrappers and the translation of
    errors into django.db exceptions (IntegrityError) apply as usual. While queries are
    logged (DEBUG, a test counting them) Django's usual cursor is used instead: a
    prepared statement leaves psycopg no query text for the log.
    """
    if conn.vendor != "postgresql" or conn.queries_logged:
        return conn.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    conn.close_if_health_check_failed()
    conn.ensure_connection()
    with conn.wrap_database_errors:
        return conn._prepare_cursor(ServerBindingCursor(conn.connection))
