"""Batch verification jobs: the job row (the source of truth), its input lines and its lookups.

A job's addresses are deduplicated by their normalised form: each distinct one is one
`BatchLookup`, fetched once; each input line is a `BatchItem` pointing at its lookup by
that form. A lookup, once `done`, is never fetched again, so a job resumes where it stopped.
"""

from __future__ import annotations

import secrets

from django.db import models


def new_job_id() -> str:
    return "avb_" + secrets.token_hex(12)


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class BatchJob(models.Model):
    id = models.CharField(primary_key=True, max_length=28, default=new_job_id, editable=False)
    consumer = models.ForeignKey("api.Consumer", on_delete=models.PROTECT, related_name="address_jobs")
    provider = models.ForeignKey("integrations.Provider", on_delete=models.PROTECT, related_name="address_jobs")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    total = models.PositiveIntegerField(help_text="Input addresses.")
    unique = models.PositiveIntegerField(help_text="Distinct normalised addresses: the lookups to make.")
    done = models.PositiveIntegerField(default=0, help_text="Input addresses with a result.")
    lookups_done = models.PositiveIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0, help_text="Times a worker took the job.")
    failed_runs = models.PositiveIntegerField(default=0, help_text="Runs that ended with the provider unavailable.")
    last_error = models.TextField(blank=True, default="")
    heartbeat = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of the worker running it.")
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = "address batch job"

    def __str__(self) -> str:
        return f"{self.id} ({self.status}, {self.done}/{self.total})"

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 1.0


class BatchLookup(models.Model):
    """One distinct normalised address of a job, and its answer once fetched."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="lookups")
    normalized = models.CharField(max_length=600)
    query = models.CharField(max_length=600, help_text="The first input line with this form (sent upstream).")
    first_position = models.PositiveIntegerField(help_text="Lookups run in input order.")
    count = models.PositiveIntegerField(help_text="Input lines sharing this form.")
    done = models.BooleanField(default=False)
    found = models.BooleanField(null=True)
    result = models.JSONField(null=True, blank=True)
    cached = models.BooleanField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "normalized"], name="addresses_lookup_unique")]
        indexes = [models.Index(fields=["job", "done", "first_position"], name="addresses_lookup_todo")]

    def __str__(self) -> str:
        return f"{self.job_id} lookup from line {self.first_position}"


class BatchItem(models.Model):
    """One input line of a job, in input order."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    query = models.CharField(max_length=600)
    normalized = models.CharField(max_length=600)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "position"], name="addresses_item_position")]

    def __str__(self) -> str:
        return f"{self.job_id} line {self.position}"
