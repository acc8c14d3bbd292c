"""The imports app's settings (`import_settings.X` is the Django setting IMPORTS_X)."""

from __future__ import annotations

from config.app_settings import AppSettings

import_settings = AppSettings("IMPORTS_", {
    # Records per page unless the job says otherwise (the partner caps it, the sandbox at 1000).
    "PAGE_SIZE": 500,
    # A progress log line every this many records.
    "PROGRESS_EVERY": 10_000,
    # Transient failures in a row (after the client's own retries) before a job ends failed.
    "MAX_FAILURES": 5,
    # A task runs a job for this long, then queues its next slice: shorter than Q_CLUSTER's
    # `timeout` (60 s), which kills a longer task, with room for one rate-limit wait.
    "TASK_SLICE_SECONDS": 30,
    # A running job whose last page is older than this was left by a dead process; the
    # sweeper queues it again. Longer than any wait for the partner's limit (60 s at most).
    "STALE_SECONDS": 300,
})
