from django.apps import AppConfig
from django.db.models.signals import post_migrate

COMPLETER_SCHEDULE = "payments.complete_stale"


def ensure_schedules(sender=None, using="default", **kwargs) -> None:
    """Create (or update) the completer schedule; idempotent, so every migrate may run it."""
    from django_q.models import Schedule

    Schedule.objects.using(using).update_or_create(
        name=COMPLETER_SCHEDULE,
        defaults={"func": "payments.tasks.complete_stale", "schedule_type": Schedule.MINUTES,
                  "minutes": 1, "repeats": -1},
    )


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="payments.ensure_schedules")
