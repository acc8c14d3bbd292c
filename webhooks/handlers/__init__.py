"""Webhook handlers: importing this package registers them all (done in AppConfig.ready)."""

from webhooks.handlers import payments  # noqa: F401 - registers on import
