"""The app's django-q2 schedules (created after every `migrate`, see config/schedules.py)."""

from __future__ import annotations

from config.schedules import Every, ensure

SCHEDULES = (
    Every("webhooks.sweep", "webhooks.tasks.sweep", minutes=1),
    Every("webhooks.purge_bodies", "webhooks.tasks.purge_bodies", minutes=60 * 24),
)


def ensure_schedules(**kwargs) -> None:
    """Create or update the schedules by name (no duplicates)."""
    ensure(SCHEDULES, using=kwargs.get("using", "default"))
