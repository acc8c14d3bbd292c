"""The emails admin: no address or sent body on any page, and Resend only with its permission, logged."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from emails.models import Email

from .conftest import run_tasks
from .test_sending import ambiguous

pytestmark = pytest.mark.django_db
ADDRESS = "ada@example.com"
BODY = "Thanks for order 42."


def staff(*codenames: str) -> User:
    user = User.objects.create_user(f"staff-{'-'.join(codenames) or 'none'}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="emails", codename__in=codenames))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def unknown(post_email, tasks, outbox) -> Email:
    outbox.script = [ambiguous()]
    post_email()
    run_tasks(tasks)
    return Email.objects.get()


def pages(client, email: Email) -> str:
    return "".join(client.get(url).content.decode() for url in (
        reverse("admin:emails_email_changelist"), reverse("admin:emails_email_changelist") + "?q=" + email.id,
        reverse("admin:emails_email_change", args=[email.pk])))


def test_pages_show_hashes_and_never_an_address_or_a_sent_body(client, post_email, tasks, mail_provider):
    post_email()
    run_tasks(tasks)
    email = Email.objects.get()
    client.force_login(staff("view_email"))
    html = pages(client, email)
    assert email.id in html and email.recipient_hashes[0] in html and "fakemail" in html
    assert ADDRESS not in html and BODY not in html and ">Resend</button>" not in html


def test_an_unknown_email_shows_its_body_and_a_resend_button_to_who_may_resend(client, unknown):
    client.force_login(staff("view_email"))
    html = pages(client, unknown)
    assert BODY in html and ADDRESS not in html and ">Resend</button>" not in html

    client.force_login(staff("view_email", "resend_email"))
    assert ">Resend</button>" in pages(client, unknown)


def test_resend_needs_the_permission(client, unknown, tasks):
    client.force_login(staff("view_email", "change_email"))
    response = client.post(reverse("admin:emails_email_resend", args=[unknown.pk]))
    assert response.status_code == 403
    assert Email.objects.get().status == "unknown" and tasks == [] and not LogEntry.objects.exists()


def test_resend_queues_a_new_attempt_and_writes_a_history_entry(client, unknown, tasks, outbox,
                                                              django_capture_on_commit_callbacks):
    user = staff("view_email", "resend_email")
    client.force_login(user)
    assert client.get(reverse("admin:emails_email_resend", args=[unknown.pk])).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:emails_email_resend", args=[unknown.pk]))
    assert response.status_code == 302
    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_id, entry.change_message) == (user, unknown.pk,
                                                                   "Resent the email (was unknown; resend 1)")
    assert run_tasks(tasks) == ["sent"] and len(outbox.calls) == 2

    # Sent now: a second resend is refused and logs nothing.
    client.post(reverse("admin:emails_email_resend", args=[unknown.pk]))
    assert LogEntry.objects.count() == 1 and len(outbox.calls) == 2
