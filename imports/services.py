"""Running partner imports: find or start a job, run it page by page, cancel it, sweep lost ones.

The run is a loop of two phases per page, in the style of payments/services.py:

1. fetch the page after the job's cursor through the provider's records adapter (the
   outbound client: token bucket, the partner's quota headers, Retry-After, retries);
2. in ONE transaction: lock the job row, check that this runner still holds it (not
   cancelled, not resumed elsewhere, cursor unchanged), upsert the page's records by
   (provider, external id) and store the next cursor and the counts.

A process killed at any instant has either committed a page with its cursor or neither,
so the next run starts exactly after the last committed page: no gap, no duplicate (and a
page fetched twice is upserted twice into the same rows).
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from imports import metrics
from imports.adapters import RecordPage
from imports.conf import import_settings
from imports.models import UNFINISHED, ImportJob, JobStatus, PartnerRecord
from integrations.client.results import RATE_LIMITED
from integrations.errors import CredentialMissing, ProviderError, ProviderUnavailable
from integrations.kinds import adapter_for

logger = logging.getLogger(__name__)

RUN_TASK = "imports.tasks.run_import"
_UPSERT_FIELDS = ["name", "email", "country", "updated_at", "raw", "imported_at"]
# The longest single wait for the partner's limit; a longer Retry-After is waited in steps.
_MAX_WAIT = 60.0


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: `status` is the job's (completed, failed, cancelled, queued when a
    task slice ended with more to do), or "lost" when another runner took the job over;
    None when there was nothing to run."""

    status: str | None
    job: ImportJob | None = None
    records: int = 0  # imported by this run


# --- starting, resuming, cancelling ------------------------------------------------------

def import_job_for(*, provider, page_size: int | None = None, limit: int | None = None,
                   restart: bool = False) -> tuple[ImportJob, bool]:
    """The provider's unfinished job to resume, or a new one: (job, created). With
    `restart`, unfinished jobs are cancelled and a new job starts from the first page."""
    with transaction.atomic():
        unfinished = ImportJob.objects.select_for_update().filter(provider=provider, status__in=UNFINISHED)
        if restart:
            for job in unfinished:
                _end(job, None, JobStatus.CANCELLED, error="replaced by a restarted import")
        else:
            job = unfinished.order_by("-created").first()
            if job is not None:
                changed = []
                if page_size and page_size != job.page_size:
                    job.page_size = page_size
                    changed.append("page_size")
                if limit is not None and limit != job.limit:
                    job.limit = limit
                    changed.append("limit")
                if changed:
                    job.save(update_fields=[*changed, "updated"])
                return job, False
        job = ImportJob.objects.create(provider=provider, page_size=page_size or import_settings.PAGE_SIZE,
                                       limit=limit)
    return job, True


def import_job_enqueue(*, job: ImportJob, now=None) -> bool:
    """Queue `job` for a django-q2 worker (start or resume from its cursor). False when it
    is completed or already running (its heartbeat fresh at `now`)."""
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status == JobStatus.COMPLETED or (locked.status == JobStatus.RUNNING and not _stale(locked, now)):
            return False
        locked.status, locked.run_token, locked.finished_at = JobStatus.QUEUED, "", None
        locked.save(update_fields=["status", "run_token", "finished_at", "updated"])
        transaction.on_commit(lambda: _enqueue(locked.pk))
    return True


def import_job_cancel(*, job: ImportJob) -> bool:
    """Stop `job`: its runner stops before committing another page. False when it was
    already completed or cancelled. It can be resumed later from its cursor."""
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status in (JobStatus.COMPLETED, JobStatus.CANCELLED):
            return False
        _end(locked, None, JobStatus.CANCELLED)
    return True


def import_jobs_sweep(*, now=None) -> list[int]:
    """Queue again the jobs a lost task or a dead process left behind: queued ones untouched
    for STALE_SECONDS (the Redis broker loses a task whose worker dies) and running ones
    without a page for as long."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=import_settings.STALE_SECONDS)
    swept = []
    for job in ImportJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING], updated__lt=cutoff):
        if import_job_enqueue(job=job, now=now):
            swept.append(job.pk)
    return swept


def _enqueue(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task(RUN_TASK, job_id, task_name=f"import {job_id}")


def _stale(job: ImportJob, now=None) -> bool:
    last = job.heartbeat_at or job.started_at or job.updated
    return last is None or last < (now or timezone.now()) - timedelta(seconds=import_settings.STALE_SECONDS)


# --- the run -------------------------------------------------------------------------------

def import_job_run(*, job_id: int, claim_from=UNFINISHED, time_budget: float | None = None,
                   on_page: Callable[[ImportJob], None] | None = None,
                   sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> RunOutcome:
    """Run job `job_id` from its cursor until it completes, fails, is cancelled or taken over,
    or `time_budget` seconds pass (a task's slice: the job is queued again for the next).

    `claim_from` are the statuses this runner may take the job from (a task: queued only;
    the command: any unfinished). `on_page(job)` is called after each committed page.
    """
    token = uuid.uuid4().hex
    job = _claim(job_id, token, claim_from)
    if job is None:
        return RunOutcome(None)
    slug = job.provider.slug
    try:
        adapter = adapter_for(job.provider, "records")
    except LookupError as err:
        return _stopped(job, token, JobStatus.FAILED, str(err), 0)
    started, imported, failures = clock(), 0, 0
    progress = ProgressLog(job, clock=clock)
    logger.info("import started", extra={"provider": slug, "job": job.pk, "cursor": job.cursor or None,
                                         "records": job.records})
    while True:
        if job.limit is not None and job.records >= job.limit:
            return _stopped(job, token, JobStatus.COMPLETED, "", imported)
        if time_budget is not None and clock() - started >= time_budget:
            return _next_slice(job, token, imported)
        want = job.page_size if job.limit is None else min(job.page_size, job.limit - job.records)
        try:
            page = adapter.fetch_page(cursor=job.cursor or None, limit=want)
        except ProviderUnavailable as err:
            result = err.result
            if result.error_code == RATE_LIMITED:
                # The partner's limit (or our bucket) needs a longer wait than one call's
                # deadline: wait here, in steps, and fetch the same page again.
                metrics.rate_limited_total.labels(slug).inc()
                wait = min(result.retry_after or 1.0, _MAX_WAIT)
                if time_budget is not None:
                    wait = min(wait, max(0.0, time_budget - (clock() - started)))
                sleep(wait)
                continue
            failures += 1
            logger.warning("import page failed (%s of %s)", failures, import_settings.MAX_FAILURES,
                           extra={"provider": slug, "job": job.pk, "error": str(err)})
            if failures >= import_settings.MAX_FAILURES:
                return _stopped(job, token, JobStatus.FAILED, _describe(err), imported)
            sleep(min(2.0**failures, 30.0))
            continue
        except (ProviderError, CredentialMissing) as err:
            # Refused (credentials revoked, partner gone) or unreadable: not going to get
            # better by itself. The job keeps its cursor and resumes once someone fixes it.
            return _stopped(job, token, JobStatus.FAILED, _describe(err), imported)
        failures = 0
        last = page.next_cursor is None or (job.limit is not None and job.records + len(page.records) >= job.limit)
        rate = (imported + len(page.records)) / max(clock() - started, 1e-6)
        committed = _commit_page(job, token, page, last=last, rate=rate)
        if committed is None:
            logger.info("import stopped: the job was cancelled or taken over", extra={"provider": slug, "job": job.pk})
            job.refresh_from_db()
            return RunOutcome("lost" if job.status != JobStatus.CANCELLED else JobStatus.CANCELLED, job, imported)
        job = committed
        imported += len(page.records)
        metrics.pages_total.labels(slug).inc()
        metrics.records_total.labels(slug).inc(len(page.records))
        progress.page(job)
        if on_page:
            on_page(job)
        if last:
            logger.info("import completed", extra={"provider": slug, "job": job.pk, "records": job.records,
                                                   "pages": job.pages})
            return RunOutcome(JobStatus.COMPLETED, job, imported)


def _claim(job_id: int, token: str, statuses) -> ImportJob | None:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("provider").filter(pk=job_id).first()
        if job is None or job.status not in statuses:
            return None
        now = timezone.now()
        job.status, job.run_token, job.finished_at, job.last_error = JobStatus.RUNNING, token, None, ""
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.save(update_fields=["status", "run_token", "finished_at", "last_error", "started_at", "heartbeat_at",
                                "updated"])
    return job


def _commit_page(job: ImportJob, token: str, page: RecordPage, *, last: bool, rate: float) -> ImportJob | None:
    """Upsert the page and move the cursor, atomically; None when this runner lost the job
    (cancelled, or resumed by another process) and nothing was written."""
    now = timezone.now()
    # One row per external id: a page naming a record twice keeps its last version (and
    # PostgreSQL refuses to update one row twice in a statement).
    by_id = {r.external_id: r for r in page.records}
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().select_related("provider").get(pk=job.pk)
        if locked.run_token != token or locked.status != JobStatus.RUNNING or locked.cursor != job.cursor:
            return None
        if by_id:
            _upsert(job.provider_id, by_id.values(), now)
        locked.pages += 1
        locked.records += len(page.records)
        locked.rate = rate
        locked.heartbeat_at = now
        if locked.total is None and page.total is not None:
            locked.total = page.total
        fields = ["pages", "records", "rate", "heartbeat_at", "total", "updated"]
        if page.next_cursor:
            locked.cursor = page.next_cursor
            fields.append("cursor")
        if last:
            locked.status, locked.finished_at, locked.run_token = JobStatus.COMPLETED, now, ""
            fields += ["status", "finished_at", "run_token"]
        locked.save(update_fields=fields)
    return locked


def _upsert(provider_id: int, records, now) -> None:
    """INSERT ... ON CONFLICT (provider, external id) DO UPDATE: the statement
    `bulk_create(update_conflicts=True, unique_fields=..., update_fields=...)` builds, as
    one statement per page whose rows are one JSON array parameter (3 parameters, not 8
    per record), so nothing is compiled through the ORM or quoted value by value (the two
    took three quarters of the import's CPU; bench/RESULTS.md, "Partner import"). Django's
    own cursor: quoting one JSON string is cheap, and its errors stay Django's.
    Datetimes are in the backend's own format (`adapt_datetimefield_value`), as the ORM's.
    """
    ops = connection.ops
    page = json.dumps([[r.external_id, r.name, r.email, r.country,
                        ops.adapt_datetimefield_value(r.updated_at) if r.updated_at else None, r.raw]
                       for r in records], separators=(",", ":"), default=str)
    params = [provider_id, ops.adapt_datetimefield_value(now), page]
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(connection.vendor), params)


_UPSERT_COLUMNS = ["provider", "external_id", *_UPSERT_FIELDS]
_UPSERT_SOURCE = {
    "postgresql": ("SELECT %s::bigint, e->>0, e->>1, e->>2, e->>3, (e->>4)::timestamptz, e->5, %s::timestamptz "
                   "FROM jsonb_array_elements(%s::jsonb) AS e"),
    # SQLite's JSON1 functions; "WHERE true" keeps ON CONFLICT from reading as a join's ON.
    "sqlite": ("SELECT %s, json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]'), "
               "json_extract(e.value, '$[2]'), json_extract(e.value, '$[3]'), json_extract(e.value, '$[4]'), "
               "json_extract(e.value, '$[5]'), %s FROM json_each(%s) AS e WHERE true"),
}


@functools.cache
def _upsert_sql(vendor: str) -> str:
    meta, quote = PartnerRecord._meta, connection.ops.quote_name
    columns = [quote(meta.get_field(name).column) for name in _UPSERT_COLUMNS]
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns[2:])
    # Names from the model's own meta, quoted; values are parameters.
    return (f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) {_UPSERT_SOURCE[vendor]} "  # noqa: S608
            f"ON CONFLICT ({columns[0]}, {columns[1]}) DO UPDATE SET {updates}")


def _next_slice(job: ImportJob, token: str, imported: int) -> RunOutcome:
    """End a task's slice: the job goes back to the queue, still at its cursor."""
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.run_token != token or locked.status != JobStatus.RUNNING:
            return RunOutcome("lost", locked, imported)
        locked.status, locked.run_token = JobStatus.QUEUED, ""
        locked.save(update_fields=["status", "run_token", "updated"])
        transaction.on_commit(lambda: _enqueue(locked.pk))
    return RunOutcome(JobStatus.QUEUED, locked, imported)


def _stopped(job: ImportJob, token: str, status: str, error: str, imported: int) -> RunOutcome:
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if not _end(locked, token, status, error=error):
            return RunOutcome("lost", locked, imported)
    if status == JobStatus.FAILED:
        logger.error("import failed: %s", error, extra={"provider": job.provider.slug, "job": job.pk})
    return RunOutcome(status, locked, imported)


def _end(job: ImportJob, token: str | None, status: str, *, error: str = "") -> bool:
    """Put a locked `job` in a final-for-now status; with a `token`, only if that runner
    still holds it."""
    if token is not None and (job.run_token != token or job.status != JobStatus.RUNNING):
        return False
    job.status, job.run_token, job.finished_at = status, "", timezone.now()
    job.last_error = error[:2000] if error else job.last_error
    job.save(update_fields=["status", "run_token", "finished_at", "last_error", "updated"])
    return True


def _describe(err: Exception) -> str:
    """The last error as staff read it: the contract code and the provider's message."""
    result = getattr(err, "result", None)
    if result is None:
        return f"{type(err).__name__}: {err}"
    data = result.data if isinstance(result.data, dict) else {}
    detail = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else ""
    return f"{result.error_code}: {detail or result.message}"


# --- progress --------------------------------------------------------------------------------

class ProgressLog:
    """A log line every PROGRESS_EVERY records: records/s of this run, records and time left."""

    def __init__(self, job: ImportJob, *, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.started = clock()
        self.start_records = job.records
        every = import_settings.PROGRESS_EVERY
        self.next_at = (job.records // every + 1) * every

    def rate(self, job: ImportJob) -> float:
        return (job.records - self.start_records) / max(self.clock() - self.started, 1e-6)

    def page(self, job: ImportJob) -> None:
        if job.records < self.next_at:
            return
        every = import_settings.PROGRESS_EVERY
        self.next_at = (job.records // every + 1) * every
        rate, left = self.rate(job), job.records_left
        eta = format_duration(left / rate) if left is not None and rate > 0 else "unknown"
        logger.info("import progress: %s records, %.0f records/s, %s left, about %s to go",
                    f"{job.records:,}", rate, "unknown" if left is None else f"{left:,}", eta,
                    extra={"provider": job.provider.slug, "job": job.pk, "records": job.records,
                           "records_per_second": round(rate, 1), "records_left": left, "pages": job.pages})


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
