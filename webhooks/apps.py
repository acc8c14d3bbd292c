from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from config.schedules import on_migrate
        from webhooks.schedules import SCHEDULES

        on_migrate(self, *SCHEDULES)

        from integrations.metrics import register_scrape_collector
        from webhooks.metrics import backlog

        register_scrape_collector(backlog)

        from webhooks import verify_cache

        # A provider or credential saved in any process is seen at once in that process
        # and within the recheck (0.1 s) in every other (see verify_cache: local clear
        # plus a shared version).
        for model in ("integrations.Provider", "integrations.Credential"):
            for name, signal in (("save", post_save), ("delete", post_delete)):
                signal.connect(verify_cache.changed, sender=model, dispatch_uid=f"webhooks.verify_cache.{model}.{name}")
