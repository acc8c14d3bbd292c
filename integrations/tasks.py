"""Scheduled work of the integrations core (django-q2). Arguments are never secrets."""

from __future__ import annotations

import logging

from integrations.records import outbound_calls_purge
from integrations.shared_state import purge_expired

logger = logging.getLogger(__name__)

PURGE_SCHEDULE_NAME = "integrations: purge outbound call records"


def purge_outbound_records() -> dict[str, int]:
    """Delete OutboundCall rows past the retention and expired shared-state rows."""
    calls = outbound_calls_purge()
    states = purge_expired()
    logger.info("purged outbound records", extra={"outbound_calls": calls, "shared_state": states})
    return {"outbound_calls": calls, "shared_state": states}
