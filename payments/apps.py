from django.apps import AppConfig

COMPLETER_SCHEDULE = "payments.complete_stale"


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from config.schedules import Every, on_migrate

        on_migrate(self, Every(COMPLETER_SCHEDULE, "payments.tasks.complete_stale", minutes=1))

        from payments import handlers  # noqa: F401 - registers the webhook handlers
