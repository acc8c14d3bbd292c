"""Prometheus metrics of address verification (served by GET /metrics with the rest).

Hit ratio: `sum(rate(address_cache_total{result="hit"}[5m])) / sum(rate(address_cache_total[5m]))`.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

# `provider` is a provider slug (bounded); addresses themselves never appear in metrics.
cache_total = Counter(
    "address_cache_total", "Address verification cache lookups by provider and result (hit/miss/bypass).",
    ["provider", "result"])
upstream_seconds = Histogram(
    "address_upstream_duration_seconds", "Geocoding calls to the provider (all attempts and waits), by outcome.",
    ["provider", "outcome"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30))
batch_lookups_total = Counter(
    "address_batch_lookups_total", "Batch lookups finished (each distinct address of a job once).", ["provider"])


class BatchProgressCollector:
    """At scrape time, from the job rows (the truth across workers): jobs by status, and
    the input addresses done and in all of the unfinished jobs."""

    def collect(self):
        from django.db.models import Count, Sum

        from addresses.models import FINAL_STATUSES, BatchJob

        jobs = GaugeMetricFamily("address_batch_jobs", "Address batch jobs by status.", labels=["status"])
        for row in BatchJob.objects.values("status").annotate(n=Count("id")):
            jobs.add_metric([row["status"]], row["n"])
        yield jobs
        open_jobs = BatchJob.objects.exclude(status__in=FINAL_STATUSES).aggregate(done=Sum("done"), total=Sum("total"))
        yield GaugeMetricFamily("address_batch_open_done", "Addresses done in unfinished batch jobs.",
                                value=open_jobs["done"] or 0)
        yield GaugeMetricFamily("address_batch_open_total", "Addresses in unfinished batch jobs.",
                                value=open_jobs["total"] or 0)
