"""The webhooks app's settings: `webhook_settings.X` is the Django setting WEBHOOK_X, or
its default below (config/app_settings.py)."""

from __future__ import annotations

from config.app_settings import AppSettings

webhook_settings = AppSettings("WEBHOOK_", {
    # Largest accepted body in bytes (413 above it), checked before and while reading.
    "MAX_BODY_BYTES": 1024 * 1024,
    # Processing attempts before an event is dead-lettered.
    "MAX_ATTEMPTS": 5,
    # Retry n waits min(max, base * 2**(n-1)) seconds.
    "RETRY_BASE_SECONDS": 30.0,
    "RETRY_MAX_SECONDS": 3600.0,
    # A `received` event not picked up after this long was lost by the queue, or never
    # handed to it (the relay is down): the sweeper enqueues it.
    "STALE_RECEIVED_SECONDS": 60.0,
    # A `processing` event older than this lost its worker (must exceed the task timeout).
    "STALE_PROCESSING_SECONDS": 120.0,
    # Raw bodies of processed/ignored events older than this are purged.
    "BODY_RETENTION_DAYS": 30,
    # Seconds a process may reuse a provider and its valid secrets for verification,
    # while the shared version is unchanged (only writes that bypass signals wait for
    # this); 0 reads them for every delivery. See webhooks/verify_cache.py.
    "VERIFY_CACHE_SECONDS": 5,
    # How often a process reads that shared version: a provider or credential saved in
    # another process applies here within this long (in the saving process at once);
    # 0 reads it for every delivery.
    "VERIFY_CACHE_RECHECK_SECONDS": 0.1,
    # At most this many events are re-enqueued per sweep, so a backlog drains gradually.
    "SWEEP_BATCH": 500,
    # The relay looks for new events this often while there are none (seconds); after a
    # full batch it looks again at once.
    "RELAY_POLL_SECONDS": 0.05,
    # Events the relay claims and enqueues per transaction.
    "RELAY_BATCH": 100,
    # Events per task at most: a batch is spread over the cluster's workers in tasks of
    # up to this many, so a worker's per-task cost is shared without idling the others.
    "TASK_BATCH": 10,
})
