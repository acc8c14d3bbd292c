from django.apps import AppConfig
from django.db.models.signals import post_migrate

PURGE_SCHEDULE = "idempotency.purge_expired"


def ensure_schedules(sender=None, using="default", **kwargs) -> None:
    """Create (or update) the purge schedule; idempotent, so every migrate may run it."""
    from django_q.models import Schedule

    Schedule.objects.using(using).update_or_create(
        name=PURGE_SCHEDULE,
        defaults={"func": "idempotency.tasks.purge_expired", "schedule_type": Schedule.MINUTES,
                  "minutes": 15, "repeats": -1},
    )


class IdempotencyConfig(AppConfig):
    name = "idempotency"
    verbose_name = "Idempotency"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="idempotency.ensure_schedules")
