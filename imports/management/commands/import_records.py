"""manage.py import_records SLUG [--page-size 500] [--limit N] [--restart] [--cancel]: run a
provider's partner import in this process, resuming its unfinished job by default."""

from __future__ import annotations

import signal
import sys
import time

from django.core.management.base import CommandError

from config.commands import Command as BaseCommand
from config.request_id import bound
from imports.models import ImportJob, JobStatus
from imports.services import format_duration, import_job_cancel, import_job_for, import_job_run
from integrations.models import Provider


class ProgressBar:
    """One redrawn line on a terminal: bar, percentage, records, rate and time left."""

    width = 30

    def __init__(self, stream, *, start_records: int):
        self.stream = stream
        self.started = time.monotonic()
        self.start_records = start_records
        self.last_draw = 0.0

    def __call__(self, job: ImportJob) -> None:
        now = time.monotonic()
        if now - self.last_draw < 0.1 and job.status != JobStatus.COMPLETED:
            return
        self.last_draw = now
        rate = (job.records - self.start_records) / max(now - self.started, 1e-6)
        expected, left = job.expected, job.records_left
        share = min(1.0, job.records / expected) if expected else 0.0
        filled = int(share * self.width)
        eta = format_duration(left / rate) if left is not None and rate > 0 else "?"
        total = f"/{expected:,}" if expected else ""
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {share:6.1%} {job.records:,}{total} "
                          f"records  {rate:,.0f}/s  {eta} left ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


class Command(BaseCommand):
    help = ("Import a provider's partner records (upserted by external id), resuming its unfinished "
            "import from its cursor unless --restart. Ctrl-C (or SIGTERM) stops it after the page in "
            "flight; running it again resumes.")

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The provider's slug.")
        parser.add_argument("--page-size", type=int, default=None,
                            help="Records per page (default 500, or the resumed job's).")
        parser.add_argument("--limit", type=int, default=None, help="Import at most N records in all.")
        parser.add_argument("--restart", action="store_true",
                            help="Cancel the unfinished import and start again from the first page.")
        parser.add_argument("--cancel", action="store_true",
                            help="Cancel the unfinished import (a running one stops before its next page).")

    def handle(self, *args, slug, page_size=None, limit=None, restart=False, cancel=False, **options):
        provider = Provider.objects.filter(slug=slug).first()
        if provider is None:
            raise CommandError(f"no provider with slug {slug!r}")
        if page_size is not None and not 1 <= page_size <= 1000:
            raise CommandError("--page-size must be from 1 to 1000")
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        if cancel:
            return self._cancel(provider)

        job, created = import_job_for(provider=provider, page_size=page_size, limit=limit, restart=restart)
        self.stdout.write(f"{'Starting' if created else 'Resuming'} import #{job.pk} of {slug} "
                          f"at {job.records:,} records (page size {job.page_size}"
                          f"{f', limit {job.limit:,}' if job.limit else ''}).")
        self.stdout.flush()
        bar = ProgressBar(sys.stderr, start_records=job.records) if sys.stderr.isatty() else None

        def stop(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)  # like Ctrl-C: the page in flight is not committed
        try:
            with bound(None):
                outcome = import_job_run(job_id=job.pk, on_page=bar)
        except KeyboardInterrupt:
            if bar:
                bar.close()
            job.refresh_from_db()
            raise CommandError(f"interrupted at {job.records:,} records; run the command again to resume") from None
        if bar:
            bar.close()
        job = outcome.job or job
        job.refresh_from_db()
        line = (f"Import #{job.pk}: {job.status}, {job.records:,} records in {job.pages:,} pages "
                f"({outcome.records:,} this run, {job.rate:,.0f} records/s).")
        if outcome.status == JobStatus.COMPLETED:
            self.stdout.write(line)
        elif outcome.status == JobStatus.FAILED:
            raise CommandError(f"{line} Last error: {job.last_error}")
        else:
            raise CommandError(f"{line} It was cancelled or is being run elsewhere.")

    def _cancel(self, provider) -> None:
        jobs = ImportJob.objects.filter(provider=provider).exclude(
            status__in=[JobStatus.COMPLETED, JobStatus.CANCELLED])
        cancelled = [job.pk for job in jobs if import_job_cancel(job=job)]
        if not cancelled:
            raise CommandError(f"{provider.slug} has no import to cancel")
        self.stdout.write(f"Cancelled import(s) {', '.join(f'#{pk}' for pk in cancelled)}.")
