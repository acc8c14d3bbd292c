"""The app's django-q2 schedules, created idempotently after every `migrate`."""

from __future__ import annotations

SCHEDULES = [
    # name, function, minutes between runs
    ("webhooks.sweep", "webhooks.tasks.sweep", 1),
    ("webhooks.purge_bodies", "webhooks.tasks.purge_bodies", 60 * 24),
]


def ensure_schedules(sender=None, using="default", **kwargs) -> None:
    """post_migrate handler: create or update the schedules by name (no duplicates)."""
    from django_q.models import Schedule

    for name, func, minutes in SCHEDULES:
        Schedule.objects.using(using).update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
