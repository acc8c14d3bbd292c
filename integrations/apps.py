from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Providers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from config.health import readiness_check
        from integrations.health import providers_check
        from integrations.tasks import ensure_schedules

        readiness_check("providers")(providers_check)
        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="integrations.ensure_schedules")
