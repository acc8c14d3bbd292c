from django.apps import AppConfig

SWEEP_SCHEDULE = "addresses.sweep"


class AddressesConfig(AppConfig):
    name = "addresses"
    verbose_name = "Address verification"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from addresses.metrics import BatchProgressCollector
        from config.schedules import Every, on_migrate
        from integrations.metrics import register_scrape_collector

        on_migrate(self, Every(SWEEP_SCHEDULE, "addresses.tasks.sweep", minutes=1))
        register_scrape_collector(BatchProgressCollector())
