"""Address verification: the cached single verify, and batch jobs (create, run, sweep).

`address_verify` is a read-through cache in front of the provider's geocoding adapter.
A batch job is a small state machine on its row: each distinct address is fetched through
`address_verify` and stored in its own transaction, so a worker killed at any point resumes
with what is left (docs/addresses.md).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from addresses import cache as verify_cache
from addresses import metrics
from addresses.conf import address_settings
from addresses.errors import ProviderUnavailableError
from addresses.models import BatchItem, BatchJob, BatchLookup, JobStatus
from addresses.normalize import normalize_address
from integrations.errors import CredentialMissing, ProviderUnavailable
from integrations.kinds import adapter_for, provider_offering
from integrations.models import Provider

logger = logging.getLogger(__name__)

GEOCODING = "geocoding"
# "Not now" from the provider side: a 503 for the caller, a retry later for a batch.
_NOT_NOW = (ProviderUnavailable, CredentialMissing, verify_cache.WaitFailed)


@dataclass(frozen=True)
class Verification:
    """One verify answer, in the API's shape (`as_dict`)."""

    query: str
    normalized: str
    found: bool
    result: dict[str, Any] | None
    cached: bool

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "normalized": self.normalized, "found": self.found,
                "result": self.result, "cached": self.cached}


# --- selectors ------------------------------------------------------------------------
def address_provider_get(*, slug: str | None) -> Provider:
    """The geocoding provider: named, ADDRESSES_DEFAULT_PROVIDER, or the only one."""
    return provider_offering(GEOCODING, slug=slug, default_slug=address_settings.DEFAULT_PROVIDER,
                             what="geocoding")


# --- the single verify ------------------------------------------------------------------
def address_verify(*, query: str, provider: Provider, refresh: bool = False, adapter=None,
                   clock: Callable[[], float] = time.time) -> Verification:
    """Verify one address through the cache. `refresh` (Cache-Control: no-cache) skips the
    cached answer and stores a new one. Raises ProviderUnavailableError (503) when the
    provider gives no usable answer. `clock` (wall seconds) decides expiry; tests move it."""
    normalized = normalize_address(query)
    key = verify_cache.entry_key(provider=provider, normalized=normalized)
    if not refresh:
        entry = verify_cache.entry_get(key, now=clock())
        if entry is not None:
            metrics.cache_total.labels(provider.slug, "hit").inc()
            return _verification(query, normalized, entry, cached=True)
    metrics.cache_total.labels(provider.slug, "bypass" if refresh else "miss").inc()

    def fetch() -> verify_cache.Entry:
        geocoder = adapter or adapter_for(provider, GEOCODING)
        started = time.monotonic()
        outcome = "error"
        try:
            place = geocoder.search(normalized)
            outcome = "found" if place else "not_found"
        finally:
            metrics.upstream_seconds.labels(provider.slug, outcome).observe(time.monotonic() - started)
        ttl = provider.cache_ttl if place else int(address_settings.NOT_FOUND_TTL)
        return verify_cache.entry_put(key, place=place.as_dict() if place else None, ttl=ttl, now=clock())

    try:
        entry, fetched = verify_cache.single_flight(
            key, fetch, lock_seconds=math.ceil(provider.deadline) + 1, clock=clock,
            fresh_after=clock() if refresh else None)
    except _NOT_NOW as err:
        code = err.result.error_code if isinstance(err, ProviderUnavailable) else type(err).__name__
        logger.warning("geocoding provider unavailable", extra={"provider": provider.slug, "error_code": code})
        raise ProviderUnavailableError(headers={"Retry-After": "5"}) from err
    return _verification(query, normalized, entry, cached=not fetched)


def _verification(query: str, normalized: str, entry: verify_cache.Entry, *, cached: bool) -> Verification:
    return Verification(query=query, normalized=normalized, found=entry.place is not None, result=entry.place,
                        cached=cached)


# --- batch jobs -------------------------------------------------------------------------
def batch_create(*, consumer, provider: Provider, addresses: Sequence[str]) -> BatchJob:
    """Store a job, its lines and its distinct lookups in one transaction (enqueue after commit)."""
    forms = [normalize_address(a) for a in addresses]
    lookups: dict[str, BatchLookup] = {}
    for position, (query, normalized) in enumerate(zip(addresses, forms, strict=True)):
        if normalized in lookups:
            lookups[normalized].count += 1
        else:
            lookups[normalized] = BatchLookup(normalized=normalized, query=query, first_position=position, count=1)
    with transaction.atomic():
        job = BatchJob.objects.create(consumer=consumer, provider=provider, total=len(addresses),
                                      unique=len(lookups), heartbeat=timezone.now())
        for lookup in lookups.values():
            lookup.job = job
        BatchLookup.objects.bulk_create(lookups.values(), batch_size=1000)
        lines = enumerate(zip(addresses, forms, strict=True))
        BatchItem.objects.bulk_create(
            (BatchItem(job=job, position=i, query=q, normalized=n) for i, (q, n) in lines), batch_size=1000)
        transaction.on_commit(lambda: batch_enqueue(job_id=job.id))
    return job


def batch_enqueue(*, job_id: str) -> None:
    from django_q.tasks import async_task

    async_task("addresses.tasks.run_batch", job_id, task_name=f"addresses.batch.{job_id}", group="addresses")


def batch_run(*, job_id: str, clock: Callable[[], float] = time.time, stop_after: int | None = None) -> BatchJob:
    """Run a job until every lookup is done, the job is cancelled, or the provider is not
    available (the job goes back to `queued`, for the sweeper, until BATCH_MAX_ATTEMPTS runs
    have failed: then `failed`). Safe to run twice at once: a lookup is stored once.
    `stop_after` (tests, benchmarks) returns after that many lookups, as a killed worker would.

    Answers are stored a few at a time (BATCH_STORE_EVERY lookups or seconds, whichever comes
    first), each group in one transaction: a worker killed between two stores loses at most
    one group, whose answers are still in the cache, so the resumed run asks nobody again."""
    claimed = BatchJob.objects.filter(pk=job_id, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).update(
        status=JobStatus.RUNNING, heartbeat=timezone.now(), runs=F("runs") + 1,
        started=timezone.now())
    job = BatchJob.objects.select_related("provider").get(pk=job_id)
    if not claimed:
        return job  # finished or cancelled meanwhile
    provider = job.provider
    geocoder = adapter_for(provider, GEOCODING)  # one client (one connection pool) for the whole run
    every = int(address_settings.BATCH_STORE_EVERY)
    pending: list[tuple[BatchLookup, Verification]] = []
    stored_at, fetched = time.monotonic(), 0
    todo = BatchLookup.objects.filter(job=job, done=False).order_by("first_position")
    for lookup in todo.iterator(chunk_size=200):
        if stop_after is not None and fetched >= stop_after:
            _batch_store(job_id, provider, pending)
            return BatchJob.objects.get(pk=job_id)
        try:
            answer = address_verify(query=lookup.query, provider=provider, clock=clock, adapter=geocoder)
        except ProviderUnavailableError as err:
            _batch_store(job_id, provider, pending)
            return _batch_unavailable(job_id, str(err.__cause__ or err))
        fetched += 1
        pending.append((lookup, answer))
        if len(pending) >= every or time.monotonic() - stored_at >= every:
            alive = _batch_store(job_id, provider, pending)
            pending, stored_at = [], time.monotonic()
            if not alive:
                return BatchJob.objects.get(pk=job_id)
    _batch_store(job_id, provider, pending)
    BatchJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.COMPLETED, finished=timezone.now(), heartbeat=timezone.now(), last_error="")
    return BatchJob.objects.get(pk=job_id)


def _batch_store(job_id: str, provider: Provider, answers: list[tuple[BatchLookup, Verification]]) -> bool:
    """Store answers and the job's progress in one transaction; False when the job is no
    longer running (cancelled): the heartbeat only beats while it runs."""
    with transaction.atomic():
        lines = lookups = 0
        for lookup, answer in answers:
            # A concurrent run of the same job may have stored it first: counted once.
            if BatchLookup.objects.filter(pk=lookup.pk, done=False).update(
                    done=True, found=answer.found, result=answer.result, cached=answer.cached):
                lines, lookups = lines + lookup.count, lookups + 1
        if lookups:
            BatchJob.objects.filter(pk=job_id).update(done=F("done") + lines, lookups_done=F("lookups_done") + lookups)
        alive = BatchJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(heartbeat=timezone.now())
    metrics.batch_lookups_total.labels(provider.slug).inc(lookups)
    return bool(alive)


def _batch_unavailable(job_id: str, message: str) -> BatchJob:
    """The provider is not available: back to `queued` for the sweeper, or `failed` at the last run."""
    job = BatchJob.objects.get(pk=job_id)
    failed_runs = job.failed_runs + 1
    final = failed_runs >= int(address_settings.BATCH_MAX_ATTEMPTS)
    BatchJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED if final else JobStatus.QUEUED, failed_runs=failed_runs,
        last_error=message[:2000], heartbeat=timezone.now(), finished=timezone.now() if final else None)
    logger.warning("address batch paused: provider unavailable", extra={"job_id": job_id, "final": final})
    return BatchJob.objects.get(pk=job_id)


def batch_cancel(*, job_id: str) -> bool:
    """Cancel a job not finished yet (its worker stops after the lookup in hand)."""
    return bool(BatchJob.objects.filter(pk=job_id, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).update(
        status=JobStatus.CANCELLED, finished=timezone.now()))


def batch_sweep(*, now=None) -> list[str]:
    """Re-enqueue unfinished jobs whose worker has not reported for BATCH_STALE_SECONDS: a
    killed worker, a task lost by the Redis broker, or a job paused by a provider outage."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=float(address_settings.BATCH_STALE_SECONDS))
    stale = list(BatchJob.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING),
                                         heartbeat__lt=stale_before).values_list("pk", flat=True)[:100])
    for job_id in stale:
        # Touch first, so the next sweep does not enqueue it again while the task is queued.
        BatchJob.objects.filter(pk=job_id).update(heartbeat=now)
        batch_enqueue(job_id=job_id)
    return stale


def batch_results(*, job: BatchJob, after: int, limit: int) -> list[dict[str, Any]]:
    """Results of lines `after`+1 ... in input order, each in the verify answer's shape
    (`result` null and `status` "pending" for lines not fetched yet)."""
    items = list(BatchItem.objects.filter(job=job, position__gt=after).order_by("position")[:limit])
    lookups = {lk.normalized: lk for lk in BatchLookup.objects.filter(job=job, normalized__in={i.normalized for i in items})}
    results = []
    for item in items:
        lookup = lookups[item.normalized]
        results.append({"position": item.position, "query": item.query, "normalized": item.normalized,
                        "status": "done" if lookup.done else "pending", "found": lookup.found,
                        "result": lookup.result, "cached": lookup.cached})
    return results


__all__ = ["Verification", "address_provider_get", "address_verify", "batch_cancel",
           "batch_create", "batch_enqueue", "batch_results", "batch_run", "batch_sweep"]
