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


def ensure_schedules(*, using: str = "default", **kwargs) -> None:
    """post_migrate: create or update the purge schedule (idempotent, by name)."""
    from django.db import connections
    from django_q.models import Schedule

    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return  # a partial migrate that stopped before django_q's tables
    Schedule.objects.using(using).update_or_create(
        name=PURGE_SCHEDULE_NAME,
        defaults={"func": "integrations.tasks.purge_outbound_records", "schedule_type": Schedule.HOURLY,
                  "repeats": -1},
    )
