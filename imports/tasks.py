"""django-q2 task entry points of imports: thin wrappers that take job ids only."""

from __future__ import annotations

from config.request_id import bound
from imports.conf import import_settings
from imports.models import JobStatus
from imports.services import import_job_run, import_jobs_sweep


def run_import(job_id: int) -> str | None:
    """Run one slice of a queued job (shorter than the cluster's task timeout); a job with
    more to do is queued again for the next slice."""
    with bound(None):
        outcome = import_job_run(job_id=job_id, claim_from=(JobStatus.QUEUED,),
                                 time_budget=float(import_settings.TASK_SLICE_SECONDS))
        return outcome.status


def sweep() -> list[int]:
    """Scheduled: queue again the jobs whose task or process was lost."""
    with bound(None):
        return import_jobs_sweep()
