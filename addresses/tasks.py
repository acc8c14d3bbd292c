"""Background tasks of addresses: thin, they delegate to services (scheduled in apps.py)."""

import logging

from addresses import services

logger = logging.getLogger(__name__)


def run_batch(job_id: str) -> dict:
    """Run (or resume) one batch job; takes the job id only, never addresses."""
    job = services.batch_run(job_id=job_id)
    return {"job": job.id, "status": job.status, "done": job.done, "total": job.total}


def sweep() -> list[str]:
    """Re-enqueue batch jobs whose worker went quiet (killed, lost task, provider outage)."""
    stale = services.batch_sweep()
    if stale:
        logger.info("address batch jobs re-enqueued", extra={"jobs": stale})
    return stale
