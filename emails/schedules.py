"""The app's django-q2 schedules (created after every `migrate`, see config/schedules.py)."""

from __future__ import annotations

from config.schedules import Every

SCHEDULES = (Every("emails.sweep", "emails.tasks.sweep", minutes=1),)
