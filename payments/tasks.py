"""Background tasks of payments (scheduled in apps.py after migrate)."""

import logging

from payments.services import payments_complete_stale

logger = logging.getLogger(__name__)


def complete_stale() -> dict:
    """The completer: finish charges and refunds left pending by a crash or an outage."""
    done = payments_complete_stale()
    if any(done.values()):
        logger.info("payments completer ran", extra=done)
    return done
