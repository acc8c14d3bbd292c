from django.apps import AppConfig

SWEEP_SCHEDULE = "imports.sweep"


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = "Partner imports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from config.schedules import Every, on_migrate
        from imports.metrics import JobCollector
        from integrations.metrics import register_scrape_collector

        on_migrate(self, Every(SWEEP_SCHEDULE, "imports.tasks.sweep", minutes=1))
        register_scrape_collector(JobCollector())
