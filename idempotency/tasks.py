"""Background tasks of the idempotency layer (scheduled in apps.py after migrate)."""

import logging

from idempotency.services import idempotency_purge_expired

logger = logging.getLogger(__name__)


def purge_expired() -> int:
    """Delete records older than the retention; the keys are new again afterwards."""
    deleted = idempotency_purge_expired()
    if deleted:
        logger.info("purged idempotency records", extra={"deleted": deleted})
    return deleted
