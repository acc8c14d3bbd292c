"""Prometheus metrics of imports: counters in the process doing the work, and the jobs'
progress read from their rows at scrape time (the truth, whichever process runs them)."""

from __future__ import annotations

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

records_total = Counter("import_records_total", "Partner records imported (upserted).", ["provider"])
pages_total = Counter("import_pages_total", "Partner record pages committed.", ["provider"])
# A page call that ended RATE_LIMITED: the partner's 429s (and quota headers) made it wait
# longer than one call's deadline. Every 429 attempt is outbound_attempts_total{outcome="HTTP_429"}.
rate_limited_total = Counter("import_rate_limited_total", "Page fetches that waited out the partner's rate limit.",
                             ["provider"])


class JobCollector:
    """`import_job_records`, `import_job_records_expected` and `import_job_progress` (0-1) of
    each queued or running job."""

    def collect(self):
        from imports.models import ImportJob, JobStatus

        done = GaugeMetricFamily("import_job_records", "Records imported by the job.",
                                 labels=["provider", "job", "status"])
        expected = GaugeMetricFamily("import_job_records_expected", "Records the job should import in all.",
                                     labels=["provider", "job", "status"])
        progress = GaugeMetricFamily("import_job_progress", "Share of the job done (0-1).",
                                     labels=["provider", "job", "status"])
        jobs = ImportJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).select_related("provider")
        for job in jobs[:100]:
            labels = [job.provider.slug, str(job.pk), job.status]
            done.add_metric(labels, job.records)
            if job.expected:
                expected.add_metric(labels, job.expected)
                progress.add_metric(labels, min(1.0, job.records / job.expected))
        yield from (done, expected, progress)
