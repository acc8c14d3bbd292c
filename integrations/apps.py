from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Providers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from config.health import readiness_check
        from config.schedules import Every, on_migrate
        from integrations.health import providers_check
        from integrations.tasks import PURGE_SCHEDULE_NAME

        readiness_check("providers")(providers_check)
        on_migrate(self, Every(PURGE_SCHEDULE_NAME, "integrations.tasks.purge_outbound_records", minutes=60))
