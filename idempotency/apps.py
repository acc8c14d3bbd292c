from django.apps import AppConfig

PURGE_SCHEDULE = "idempotency.purge_expired"


class IdempotencyConfig(AppConfig):
    name = "idempotency"
    verbose_name = "Idempotency"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from config.schedules import Every, on_migrate

        on_migrate(self, Every(PURGE_SCHEDULE, "idempotency.tasks.purge_expired", minutes=15))
