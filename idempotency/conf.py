"""Settings of the idempotency layer, with defaults; override_settings works in tests."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def retention() -> timedelta:
    """How long a record is kept (IDEMPOTENCY_RETENTION_SECONDS, default 24 h)."""
    return timedelta(seconds=getattr(settings, "IDEMPOTENCY_RETENTION_SECONDS", 24 * 3600))


def lock_timeout() -> timedelta:
    """After how long an in-progress record may be taken over (IDEMPOTENCY_LOCK_TIMEOUT_SECONDS).

    Longer than any provider deadline, so a live request is never taken over in practice.
    """
    return timedelta(seconds=getattr(settings, "IDEMPOTENCY_LOCK_TIMEOUT_SECONDS", 90))


def retry_after_seconds() -> int:
    """The Retry-After of a 409 idempotency_key_in_use (IDEMPOTENCY_RETRY_AFTER_SECONDS)."""
    return int(getattr(settings, "IDEMPOTENCY_RETRY_AFTER_SECONDS", 1))


def purge_batch_size() -> int:
    return int(getattr(settings, "IDEMPOTENCY_PURGE_BATCH_SIZE", 1000))


MAX_KEY_LENGTH = 255
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
