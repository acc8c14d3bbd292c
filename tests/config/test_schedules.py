"""Every app's scheduled task exists after migrate, once, whatever the number of deploys."""

from django.core.management import call_command
from django_q.models import Schedule

EXPECTED = {
    "integrations: purge outbound call records": ("integrations.tasks.purge_outbound_records", 60),
    "idempotency.purge_expired": ("idempotency.tasks.purge_expired", 15),
    "payments.complete_stale": ("payments.tasks.complete_stale", 1),
    "webhooks.sweep": ("webhooks.tasks.sweep", 1),
    "webhooks.purge_bodies": ("webhooks.tasks.purge_bodies", 1440),
    "emails.sweep": ("emails.tasks.sweep", 1),
    "addresses.sweep": ("addresses.tasks.sweep", 1),
    "imports.sweep": ("imports.tasks.sweep", 1),
}


def test_all_schedules_exist_after_migrate_exactly_once(transactional_db):
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)
    rows = {s.name: (s.func, s.minutes, s.schedule_type) for s in Schedule.objects.all()}
    assert {name: rows[name][:2] for name in EXPECTED} == EXPECTED
    assert {rows[name][2] for name in EXPECTED} == {Schedule.MINUTES}
    assert Schedule.objects.count() == len(EXPECTED)


def test_every_scheduled_function_is_importable():
    from django.utils.module_loading import import_string

    for func, _ in EXPECTED.values():
        assert callable(import_string(func))
