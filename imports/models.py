"""Partner imports: the job (where it is, how it goes) and the records it brings.

The job row is the source of truth for a running import: its `cursor` is the partner's
cursor for the next page, committed in the same transaction as the page it follows
(imports.services), so whatever stops the import, it resumes with no gap and no duplicate.
"""

from __future__ import annotations

from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # waiting for a worker (or for the next slice of its run)
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"  # stopped on an error; resumes from its cursor
    CANCELLED = "cancelled", "Cancelled"  # stopped by staff; resumes from its cursor


# A job in these states is the provider's current import; `import_records` resumes it.
UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED)


class ImportJob(models.Model):
    """One import of a provider's records, page after page from `cursor`."""

    provider = models.ForeignKey("integrations.Provider", on_delete=models.PROTECT, related_name="import_jobs")
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    page_size = models.PositiveIntegerField(default=500)
    limit = models.PositiveBigIntegerField(null=True, blank=True, help_text="Import at most this many records.")
    cursor = models.TextField(blank=True, help_text="The partner's cursor of the next page (blank: the first).")
    pages = models.PositiveIntegerField(default=0)
    records = models.PositiveBigIntegerField(default=0)
    total = models.PositiveBigIntegerField(null=True, blank=True,
                                           help_text="Records expected in all (the partner's count, or the limit).")
    rate = models.FloatField(default=0.0, help_text="Records per second of the current (or last) run.")
    last_error = models.TextField(blank=True)
    # The lease of whoever runs the job: a page is committed only under the token that
    # claimed it, so a cancelled job, or one resumed elsewhere, stops its old runner.
    run_token = models.CharField(max_length=32, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="The last page committed.")
    finished_at = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        permissions = [("run_importjob", "Can start, resume and cancel imports")]
        indexes = [models.Index(fields=["provider", "status"])]

    def __str__(self) -> str:
        return f"import #{self.pk} of {self.provider_id} ({self.status})"

    @property
    def expected(self) -> int | None:
        """Records this job should bring in all, when known."""
        if self.total is not None and self.limit is not None:
            return min(self.total, self.limit)
        return self.total if self.total is not None else self.limit

    @property
    def records_left(self) -> int | None:
        expected = self.expected
        return None if expected is None else max(0, expected - self.records)


class PartnerRecord(models.Model):
    """A partner's record as last imported: one row per (provider, external id), upserted."""

    provider = models.ForeignKey("integrations.Provider", on_delete=models.PROTECT, related_name="+")
    external_id = models.CharField(max_length=100)
    name = models.CharField(max_length=300, blank=True)
    email = models.CharField(max_length=320, blank=True)
    country = models.CharField(max_length=2, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True, help_text="When the partner last changed it.")
    raw = models.JSONField(default=dict)
    imported_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "external_id"],
                                               name="imports_record_one_per_external_id")]

    def __str__(self) -> str:
        return self.external_id
