from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "emails"
    verbose_name = "Emails"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from config.schedules import on_migrate
        from emails.schedules import SCHEDULES

        on_migrate(self, *SCHEDULES)

        from emails import handlers  # noqa: F401 - registers the webhook handlers
