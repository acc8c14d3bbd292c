"""The admin login locks after repeated wrong passwords (django-axes), per user name and address."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test user's password
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("alice", "alice@example.test", PASSWORD)


def attempt(client, password, *, address="203.0.113.7"):
    return client.post(LOGIN, {"username": "alice", "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_thirty_wrong_passwords_then_the_right_one_stays_locked(client, staff):
    answers = [attempt(client, f"guess-{n}").status_code for n in range(30)]
    limit = settings.AXES_FAILURE_LIMIT
    assert answers[: limit - 1] == [200] * (limit - 1)  # the login form again, with an error
    assert set(answers[limit - 1:]) == {429}

    response = attempt(client, PASSWORD)
    assert response.status_code == 429
    assert b"Login temporarily locked" in response.content
    assert not logged_in(client)


def test_lockout_is_per_address_so_others_still_log_in(client, staff):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, f"guess-{n}")
    assert attempt(client, PASSWORD).status_code == 429

    response = attempt(client, PASSWORD, address="198.51.100.20")
    assert response.status_code == 302
    assert logged_in(client)


def test_a_forwarded_for_header_does_not_buy_a_fresh_address(client, staff):
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": "alice", "password": f"guess-{n}"}, REMOTE_ADDR="203.0.113.7",
                    HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="203.0.113.7",
                           HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert response.status_code == 429


def test_lock_lifts_after_the_cool_off(client, staff):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, f"guess-{n}")
    assert attempt(client, PASSWORD).status_code == 429
    # Age the recorded failures past the cool-off instead of waiting for it.
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time
                                 - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert attempt(client, PASSWORD).status_code == 302
    assert logged_in(client)


def test_an_operator_can_lift_the_lock_at_once(client, staff):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, f"guess-{n}")
    call_command("axes_reset_username", "alice", verbosity=0)
    assert attempt(client, PASSWORD).status_code == 302


def test_wrong_passwords_are_not_stored(client, staff):
    attempt(client, "hunter2-is-my-secret")
    stored = AccessAttempt.objects.get()
    assert "hunter2-is-my-secret" not in f"{stored.post_data} {stored.get_data}"


def test_a_successful_login_resets_the_count(client, staff):
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, f"guess-{n}")
    assert attempt(client, PASSWORD).status_code == 302
    client.logout()
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, f"again-{n}")
    assert attempt(client, PASSWORD).status_code == 302
