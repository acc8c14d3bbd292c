"""Scheduled django-q2 tasks that apps declare; `migrate` creates them, idempotently.

Each app lists its schedules in its AppConfig.ready():

    schedules.on_migrate(self, Every("webhooks.sweep", "webhooks.tasks.sweep", minutes=1))

After every `migrate` each schedule is created or updated by name, so deploys never
duplicate them and a changed interval takes effect with the next deploy.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections
from django.db.models.signals import post_migrate


@dataclass(frozen=True)
class Every:
    name: str
    func: str  # dotted path of the task function
    minutes: int


def ensure(schedules: tuple[Every, ...], *, using: str = "default") -> None:
    """Create or update `schedules` by name (safe to call any number of times)."""
    from django_q.models import Schedule

    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return  # a partial migrate that stopped before django_q's tables
    for every in schedules:
        Schedule.objects.using(using).update_or_create(
            name=every.name,
            defaults={"func": every.func, "schedule_type": Schedule.MINUTES, "minutes": every.minutes,
                      "repeats": -1},
        )


def on_migrate(app_config, *schedules: Every) -> None:
    """Ensure `schedules` after every migrate of `app_config`'s app."""

    def handler(sender=None, using="default", **kwargs):
        ensure(schedules, using=using)

    post_migrate.connect(handler, sender=app_config, weak=False,
                         dispatch_uid=f"{app_config.label}.schedules")
