"""The send task and the sweeper: outcomes, outages, ambiguity, dead workers; never sent twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from emails import services
from emails.models import Email
from integrations.adapters.email import DeliveryUnknown, SendResult
from integrations.client.results import CallResult
from integrations.errors import CredentialMissing

from .conftest import run_tasks, unavailable

pytestmark = pytest.mark.django_db


def ambiguous() -> DeliveryUnknown:
    return DeliveryUnknown(CallResult(ok=False, error_code="ETIMEDOUT", message="read timeout", provider="mail",
                                      maybe_delivered=True))


@pytest.fixture
def queued(post_email):
    """A queued email's id (its task captured, not run)."""
    return post_email().json()["id"]


def sweep_at(now):
    return services.emails_sweep(now=now)


def test_sent_stores_the_message_id_and_deletes_bodies_and_addresses(queued, tasks, outbox, api_client):
    assert run_tasks(tasks) == ["sent"]
    email = Email.objects.get()
    assert (email.status, email.provider_message_id, email.attempts) == ("sent", "msg_1", 1)
    assert (email.text, email.html, email.recipients) == ("", "", {}) and email.content_purged_at
    assert email.recipient_count == 1 and len(email.recipient_hashes) == 1
    message = outbox.calls[0]
    assert (message.email_id, message.idempotency_key) == (email.id, email.outbound_idempotency_key)
    body = api_client.get(f"/api/v1/emails/{queued}").json()
    assert (body["status"], body["provider_message_id"]) == ("sent", "msg_1")


@override_settings(EMAIL_KEEP_BODIES=True)
def test_keep_bodies_keeps_them(queued, tasks):
    run_tasks(tasks)
    email = Email.objects.get()
    assert email.text == "Thanks for order 42." and email.recipients["to"] == ["ada@example.com"]
    assert email.content_purged_at is None


def test_a_refusal_is_failed_with_the_providers_reason(queued, tasks, outbox):
    outbox.script = [SendResult(status="failed", failure_code="invalid_recipient", failure_message="no such user")]
    assert run_tasks(tasks) == ["failed"]
    email = Email.objects.get()
    assert (email.status, email.failure_code, email.text) == ("failed", "invalid_recipient", "")


@pytest.mark.parametrize("deduplicates", [False, True])
def test_an_outage_then_recovery_sends_exactly_once(queued, tasks, outbox, deduplicates):
    outbox.deduplicates = deduplicates
    outbox.script = [unavailable("ECONN"), unavailable("HTTP_503"),
                     CredentialMissing("no api_key credential for fakemail")]
    start = timezone.now()

    assert run_tasks(tasks) == ["queued"]
    email = Email.objects.get()
    assert email.next_attempt_at > start and email.failure_code == "ECONN"
    assert sweep_at(start) == {"requeued": 0, "unknown": 0}  # its backoff has not passed
    for minutes in (1, 3, 10):  # 30 s, then 60 s, then 120 s of backoff
        assert sweep_at(timezone.now() + timedelta(minutes=minutes))["requeued"] == 1
        assert services.email_send(email_id=queued, now=timezone.now() + timedelta(minutes=minutes)) in (
            "queued", "sent")
        tasks.clear()

    email.refresh_from_db()
    assert email.status == "sent" and email.attempts == 4
    accepted = outbox.calls[-1]
    assert len(outbox.calls) == 4 and set(outbox.keys()) == {accepted.idempotency_key}
    # Once sent, neither the sweeper nor a stray task sends it again.
    assert sweep_at(timezone.now() + timedelta(hours=1)) == {"requeued": 0, "unknown": 0}
    assert services.email_send(email_id=queued) is None and len(outbox.calls) == 4


def test_an_outage_past_the_deadline_fails_the_email(queued, tasks, outbox):
    outbox.script = [unavailable()] * 3
    with override_settings(EMAIL_SEND_DEADLINE=60, EMAIL_RETRY_BASE_SECONDS=40):
        run_tasks(tasks)
        assert Email.objects.get().status == "queued"
        services.email_send(email_id=queued, now=timezone.now() + timedelta(seconds=41))
    email = Email.objects.get()
    assert (email.status, email.failure_code) == ("failed", "send_deadline_exceeded")
    assert "EMAIL_SEND_DEADLINE" in email.failure_message and email.text == ""


def test_a_queued_email_found_after_the_deadline_fails_without_a_call(queued, tasks, outbox):
    Email.objects.update(created=timezone.now() - timedelta(days=2))
    assert run_tasks(tasks) == [None]
    assert Email.objects.get().status == "failed" and outbox.calls == []


def test_an_ambiguous_failure_is_unknown_and_never_sent_again_automatically(queued, tasks, outbox):
    outbox.script = [ambiguous()]
    assert run_tasks(tasks) == ["unknown"]
    email = Email.objects.get()
    assert (email.status, email.failure_code) == ("unknown", "ETIMEDOUT")
    assert email.text  # kept: staff may resend it

    later = timezone.now() + timedelta(days=1)
    assert sweep_at(later) == {"requeued": 0, "unknown": 0}
    assert services.email_send(email_id=queued, now=later) is None
    assert tasks == [] and len(outbox.calls) == 1


def test_an_ambiguous_failure_at_a_deduplicating_provider_is_retried_with_the_same_key(queued, tasks, outbox):
    outbox.deduplicates = True
    outbox.script = [ambiguous()]
    assert run_tasks(tasks) == ["queued"]
    services.email_send(email_id=queued, now=timezone.now() + timedelta(minutes=1))
    assert Email.objects.get().status == "sent"
    assert len(set(outbox.keys())) == 1 and len(outbox.calls) == 2


def test_an_adapter_crash_counts_as_ambiguous(queued, tasks, outbox):
    outbox.script = [RuntimeError("boom")]
    assert run_tasks(tasks) == ["unknown"]
    assert Email.objects.get().failure_code == "RuntimeError"


def test_a_second_task_for_the_same_email_sends_nothing(queued, tasks, outbox):
    tasks.append(tasks[0])
    assert run_tasks(tasks) == ["sent", None]
    assert len(outbox.calls) == 1


def test_a_lost_task_is_queued_again_by_the_sweeper(queued, tasks, outbox):
    tasks.clear()  # the broker lost it
    assert sweep_at(timezone.now())["requeued"] == 0  # too early: the task may still be on its way
    assert sweep_at(timezone.now() + timedelta(minutes=5))["requeued"] == 1
    assert run_tasks(tasks) == ["sent"] and len(outbox.calls) == 1


def _die_while_sending(email_id: str) -> None:
    """A worker claimed the email and died before storing any outcome."""
    services._claim(email_id, timezone.now())


def test_a_dead_worker_at_a_non_deduplicating_provider_leaves_the_email_unknown(queued, tasks, outbox):
    tasks.clear()
    _die_while_sending(queued)
    assert sweep_at(timezone.now() + timedelta(minutes=1)) == {"requeued": 0, "unknown": 0}  # not stale yet
    assert sweep_at(timezone.now() + timedelta(minutes=10)) == {"requeued": 0, "unknown": 1}
    email = Email.objects.get()
    assert (email.status, email.failure_code) == ("unknown", "worker_lost") and tasks == []


def test_a_dead_worker_at_a_deduplicating_provider_is_retried_with_the_same_key(queued, tasks, outbox):
    outbox.deduplicates = True
    key = Email.objects.get().outbound_idempotency_key
    tasks.clear()
    _die_while_sending(queued)
    assert sweep_at(timezone.now() + timedelta(minutes=10)) == {"requeued": 1, "unknown": 0}
    run_tasks(tasks)
    email = Email.objects.get()
    assert email.status == "sent" and email.attempts == 2 and outbox.keys() == [key]


def test_a_late_outcome_of_a_taken_over_attempt_changes_nothing(queued, tasks, outbox):
    tasks.clear()
    claimed = services._claim(queued, timezone.now())
    services.emails_sweep(now=timezone.now() + timedelta(minutes=10))  # -> unknown
    assert services._store_not_now(claimed, timezone.now(), "ECONN") is None
    assert Email.objects.get().status == "unknown"


def test_a_late_acceptance_still_records_that_it_was_sent(queued, tasks):
    tasks.clear()
    claimed = services._claim(queued, timezone.now())
    services.emails_sweep(now=timezone.now() + timedelta(minutes=10))  # -> unknown
    services._store_result(claimed, SendResult(status="sent", provider_message_id="msg_late"))
    email = Email.objects.get()
    assert (email.status, email.provider_message_id) == ("sent", "msg_late")


def test_resending_an_unknown_email_is_a_new_recorded_attempt_with_a_new_key(queued, tasks, outbox,
                                                                            django_capture_on_commit_callbacks):
    outbox.script = [ambiguous()]
    run_tasks(tasks)
    first_key = Email.objects.get().outbound_idempotency_key

    with django_capture_on_commit_callbacks(execute=True):
        services.email_resend(email_id=queued, by="admin:grace")
    assert run_tasks(tasks) == ["sent"]
    email = Email.objects.get()
    assert (email.status, email.resends, email.attempts) == ("sent", 1, 2)
    assert email.outbound_idempotency_key != first_key and outbox.keys() == [first_key,
                                                                             email.outbound_idempotency_key]
    sources = list(email.history.values_list("source", flat=True))
    assert "resend 1 by admin:grace: a new send attempt" in sources
    assert sources.count("task: send attempt 2") == 1


def test_only_an_unknown_email_can_be_resent(queued):
    from emails.errors import EmailNotResendable

    with pytest.raises(EmailNotResendable):
        services.email_resend(email_id=queued, by="admin:grace")
