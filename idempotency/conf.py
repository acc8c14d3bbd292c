"""The idempotency layer's settings (`idempotency_settings.X` is the Django setting IDEMPOTENCY_X)
and the contract's fixed names and limits."""

from __future__ import annotations

from config.app_settings import AppSettings

idempotency_settings = AppSettings("IDEMPOTENCY_", {
    # How long a record is kept (24 h): a retry later than this is a new request.
    "RETENTION_SECONDS": 24 * 3600,
    # After how long an in-progress record may be taken over. Longer than any provider
    # deadline, so a live request is never taken over in practice.
    "LOCK_TIMEOUT_SECONDS": 90,
    # The Retry-After of a 409 idempotency_key_in_use.
    "RETRY_AFTER_SECONDS": 1,
    # Records deleted per statement by the purge (short locks).
    "PURGE_BATCH_SIZE": 1000,
})

# Part of the API contract, not settings.
MAX_KEY_LENGTH = 255
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
