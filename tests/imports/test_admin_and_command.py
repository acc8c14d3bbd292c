"""Staff start, resume and cancel imports from the admin (a permission, a history entry, a
django-q2 task with the job id only); operators do the same with `manage.py import_records`."""

from __future__ import annotations

import io

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.urls import reverse

from imports.models import ImportJob, JobStatus, PartnerRecord
from imports.services import import_job_for

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:imports_importjob_changelist"


def staff(*codenames: str) -> User:
    user = User.objects.create_user(f"staff-{len(codenames)}-{User.objects.count()}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="imports", codename__in=codenames))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def enqueued(monkeypatch) -> list:
    calls = []
    monkeypatch.setattr("imports.services._enqueue", calls.append)
    return calls


def act(client, action: str, *jobs):
    return client.post(reverse(CHANGELIST), {"action": action, "index": "0",
                                             "_selected_action": [job.pk for job in jobs]})


def test_a_viewer_sees_jobs_but_can_run_no_action(client, partner, enqueued, django_capture_on_commit_callbacks):
    job, _ = import_job_for(provider=partner)
    client.force_login(staff("view_importjob", "view_partnerrecord"))
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.get(reverse("admin:imports_partnerrecord_changelist")).status_code == 200
    assert client.get(reverse("admin:imports_importjob_add")).status_code == 403
    for action in ("start_selected", "resume_selected", "cancel_selected"):
        with django_capture_on_commit_callbacks(execute=True):
            act(client, action, job)
    assert ImportJob.objects.get().status == JobStatus.QUEUED and enqueued == []
    assert not LogEntry.objects.exists()


def test_cancel_and_resume_take_the_run_permission_and_are_logged(client, partner, enqueued,
                                                                   django_capture_on_commit_callbacks):
    job, _ = import_job_for(provider=partner)
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, cursor="abc", records=500)
    user = staff("view_importjob", "run_importjob")
    client.force_login(user)

    act(client, "cancel_selected", job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.cursor == "abc"
    with django_capture_on_commit_callbacks(execute=True):
        act(client, "resume_selected", job)
    job.refresh_from_db()
    assert (job.status, job.cursor, job.records) == (JobStatus.QUEUED, "abc", 500)
    assert enqueued == [job.pk]  # the task gets the job id, nothing else
    assert [(e.user, e.change_message) for e in LogEntry.objects.order_by("pk")] == [
        (user, "Cancelled the import (was running)"), (user, "Resumed the import (was cancelled)")]


def test_start_again_replaces_the_job_with_a_new_one_from_the_first_page(client, partner, enqueued,
                                                                         django_capture_on_commit_callbacks):
    job, _ = import_job_for(provider=partner, page_size=200, limit=1000)
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, cursor="abc", last_error="HTTP_401")
    client.force_login(staff("view_importjob", "run_importjob"))
    with django_capture_on_commit_callbacks(execute=True):
        act(client, "start_selected", job)
    old, new = ImportJob.objects.order_by("created")
    assert old.status == JobStatus.CANCELLED
    assert (new.status, new.cursor, new.page_size, new.limit) == (JobStatus.QUEUED, "", 200, 1000)
    assert enqueued == [new.pk]


def test_adding_a_job_in_the_admin_starts_the_import(client, partner, enqueued, django_capture_on_commit_callbacks):
    user = staff("view_importjob", "run_importjob", "add_importjob")
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:imports_importjob_add"),
                               {"provider": partner.pk, "page_size": 250, "limit": 2000})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.get()
    assert (job.status, job.page_size, job.limit) == (JobStatus.QUEUED, 250, 2000)
    assert enqueued == [job.pk]
    assert LogEntry.objects.get().change_message == "Started the import"


def test_every_import_action_declares_a_permission():
    from django.contrib import admin

    for model in (ImportJob, PartnerRecord):
        for func, name, _ in admin.site._registry[model]._get_base_actions():
            assert getattr(func, "allowed_permissions", None), name


def test_the_command_imports_resumes_and_cancels(partner, control):
    out = io.StringIO()
    call_command("import_records", "partner", "--page-size", "100", "--limit", "300", stdout=out)
    assert "Starting import" in out.getvalue() and "completed, 300 records in 3 pages" in out.getvalue()
    assert PartnerRecord.objects.count() == 300

    job, _ = import_job_for(provider=partner, restart=True, limit=500, page_size=100)
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    out = io.StringIO()
    call_command("import_records", "partner", "--cancel", stdout=out)
    assert f"Cancelled import(s) #{job.pk}" in out.getvalue()
    with pytest.raises(CommandError, match="no import to cancel"):
        call_command("import_records", "partner", "--cancel")

    out = io.StringIO()
    call_command("import_records", "partner", stdout=out)  # resumes the cancelled one
    assert f"Resuming import #{job.pk}" in out.getvalue()
    assert ImportJob.objects.get(pk=job.pk).records == 500 and PartnerRecord.objects.count() == 500


def test_the_command_refuses_bad_input(partner):
    for args, message in ((["nobody"], "no provider"), (["partner", "--page-size", "0"], "--page-size"),
                          (["partner", "--limit", "0"], "--limit")):
        with pytest.raises(CommandError, match=message):
            call_command("import_records", *args)


def test_a_failed_run_exits_with_its_last_error(partner, control):
    control.faults({"faults": [{"action": "error", "status": 404, "path": "/v1/records"}]})
    with pytest.raises(CommandError, match="failed, 0 records.*Last error: HTTP_404"):
        call_command("import_records", "partner", "--limit", "100", stdout=io.StringIO())


def test_progress_is_logged_every_n_records_with_rate_and_what_is_left(partner, control, settings, caplog):
    settings.IMPORTS_PROGRESS_EVERY = 250
    caplog.set_level("INFO", logger="imports.services")
    call_command("import_records", "partner", "--page-size", "100", "--limit", "1000", stdout=io.StringIO())
    lines = [r for r in caplog.records if r.getMessage().startswith("import progress")]
    assert [r.records for r in lines] == [300, 500, 800, 1000]
    assert [r.records_left for r in lines] == [700, 500, 200, 0]
    assert all(r.records_per_second > 0 for r in lines)
    assert "records/s, 700 left, about 0:00:" in lines[0].getMessage()


def test_the_progress_bar_draws_records_rate_and_time_left(partner):
    from imports.management.commands.import_records import ProgressBar

    job, _ = import_job_for(provider=partner, limit=1000)
    job.records = 250
    stream = io.StringIO()
    ProgressBar(stream, start_records=0)(job)
    line = stream.getvalue()
    assert line.startswith("\r[#######.......................]  25.0% 250/1,000 records")
    assert "/s" in line and "left" in line


def test_the_sweeper_queues_again_jobs_left_by_a_dead_process_or_a_lost_task(partner, enqueued,
                                                                            django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from imports.services import import_jobs_sweep
    from imports.tasks import sweep

    dead, _ = import_job_for(provider=partner)
    ImportJob.objects.filter(pk=dead.pk).update(status=JobStatus.RUNNING, run_token="x", cursor="c1")
    later = timezone.now() + timedelta(seconds=301)
    with django_capture_on_commit_callbacks(execute=True):
        assert import_jobs_sweep(now=timezone.now()) == []  # fresh: its runner may be alive
        assert import_jobs_sweep(now=later) == [dead.pk]
    dead.refresh_from_db()
    assert (dead.status, dead.run_token, dead.cursor) == (JobStatus.QUEUED, "", "c1")
    assert enqueued == [dead.pk]
    ImportJob.objects.filter(pk=dead.pk).update(status=JobStatus.COMPLETED)
    assert sweep() == []
