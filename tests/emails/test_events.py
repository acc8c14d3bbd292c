"""Provider events through the webhook pipeline: statuses forward only, events kept, replays no-ops."""

from __future__ import annotations

import pytest

from emails.handlers import SANDBOX_TYPES
from emails.models import Email, EmailEvent
from emails.privacy import recipient_hash
from tests.webhooks.factories import stored_event
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_process

from .conftest import run_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(post_email, tasks) -> Email:
    post_email()
    run_tasks(tasks)
    return Email.objects.get()


def deliver(provider, email: Email | None, event: str, *, event_id: str | None = None, by_message_id=False,
            **payload) -> WebhookEvent:
    """Store a provider event as intake would and process it; returns the stored event."""
    if email is not None:
        payload.setdefault("message_id" if by_message_id else "email_id",
                           email.provider_message_id if by_message_id else email.id)
    payload.setdefault("recipient", "ada@example.com")
    # The sandbox's type names where it has one, else SendGrid's ("processed").
    type_ = f"email.{event}" if f"email.{event}" in SANDBOX_TYPES else event
    stored = stored_event(provider=provider, type_=type_, payload={"event": event, **payload},
                          event_id=event_id)
    webhook_process(event_pk=stored.pk)
    stored.refresh_from_db()
    return stored


def status(email: Email) -> str:
    email.refresh_from_db()
    return email.status


def test_a_delivered_event_moves_the_email_and_is_kept_with_a_recipient_hash(sent, mail_provider, api_client):
    stored = deliver(mail_provider, sent, "delivered")
    assert stored.status == EventStatus.PROCESSED
    assert (stored.subject_type, stored.subject_id) == ("emails.email", sent.id)
    assert status(sent) == "delivered"
    event = EmailEvent.objects.get()
    assert (event.type, event.recipient_hash) == ("delivered", recipient_hash("Ada@Example.com"))
    body = api_client.get(f"/api/v1/emails/{sent.id}").json()
    assert body["status"] == "delivered"
    assert [(e["type"], e["recipient_hash"]) for e in body["events"]] == [("delivered", event.recipient_hash)]


def test_a_late_deferred_after_delivered_changes_nothing_but_is_kept(sent, mail_provider):
    deliver(mail_provider, sent, "deferred")
    assert status(sent) == "deferred"
    deliver(mail_provider, sent, "delivered")
    deliver(mail_provider, sent, "deferred")
    deliver(mail_provider, sent, "processed")
    assert status(sent) == "delivered"
    assert list(EmailEvent.objects.values_list("type", flat=True)) == ["deferred", "delivered", "deferred",
                                                                       "processed"]


def test_opens_and_clicks_are_recorded_without_a_status_change(sent, mail_provider):
    deliver(mail_provider, sent, "opened")
    deliver(mail_provider, sent, "clicked")
    assert status(sent) == "sent" and EmailEvent.objects.count() == 2


def test_a_complaint_after_delivery_moves_on_and_a_bounce_after_it_does_not(sent, mail_provider):
    deliver(mail_provider, sent, "delivered")
    deliver(mail_provider, sent, "complained")
    deliver(mail_provider, sent, "bounced")
    assert status(sent) == "complained"


def test_a_replayed_event_adds_nothing(sent, mail_provider):
    stored = deliver(mail_provider, sent, "bounced", event_id="evt_same")
    WebhookEvent.objects.filter(pk=stored.pk).update(status=EventStatus.RECEIVED)  # a forced replay
    assert webhook_process(event_pk=stored.pk) == EventStatus.PROCESSED
    assert EmailEvent.objects.count() == 1 and status(sent) == "bounced"
    assert sent.history.filter(to_status="bounced").count() == 1


def test_an_event_for_an_unknown_email_proves_it_was_sent(post_email, tasks, outbox, mail_provider):
    from .test_sending import ambiguous

    outbox.script = [ambiguous()]
    post_email()
    run_tasks(tasks)
    email = Email.objects.get()
    assert email.status == "unknown"
    deliver(mail_provider, email, "delivered", message_id="msg_1")
    email.refresh_from_db()
    assert (email.status, email.provider_message_id) == ("delivered", "msg_1")


def test_events_are_matched_by_the_providers_message_id_too(sent, mail_provider):
    deliver(mail_provider, sent, "delivered", by_message_id=True)
    assert status(sent) == "delivered"


def test_an_event_without_our_id_for_an_unknown_message_is_another_senders_and_a_no_op(sent, mail_provider):
    stored = deliver(mail_provider, None, "delivered", message_id="msg_someone_elses")
    assert stored.status == EventStatus.PROCESSED and stored.subject_id == ""  # not retried into dead letters
    assert status(sent) == "sent" and not EmailEvent.objects.exists()


def test_an_event_about_an_email_that_is_not_ours_is_processed_as_a_no_op(sent, mail_provider):
    stored = deliver(mail_provider, None, "delivered", email_id="em_" + "0" * 24)
    assert stored.status == EventStatus.PROCESSED and stored.subject_id == ""
    assert status(sent) == "sent" and not EmailEvent.objects.exists()


def test_an_untracked_event_type_changes_nothing(sent, mail_provider):
    stored = stored_event(provider=mail_provider, type_="unsubscribe", payload={"event": "", "email_id": sent.id})
    assert webhook_process(event_pk=stored.pk) == EventStatus.PROCESSED
    assert not EmailEvent.objects.exists() and status(sent) == "sent"


def test_every_email_kinds_event_types_have_the_handler():
    from emails.handlers import EMAIL_EVENT_TYPES, email_event
    from webhooks.registry import _handlers

    for type_ in ("bounce", "spamreport", "open", "failed", "accepted", "email.delivered", "email.clicked"):
        assert type_ in EMAIL_EVENT_TYPES and _handlers[("email", type_)] is email_event


def test_a_sandbox_event_in_its_own_wire_format_reaches_the_email(provider, api_key):
    """With the real sandbox kind's adapter (integrations/kinds/sandbox.py), not the fake."""
    from api.models import Consumer

    email = Email.objects.create(consumer=Consumer.objects.get(), provider=provider, from_address="a@shop.example",
                                 recipient_count=1, subject="s", outbound_idempotency_key="k-sandbox",
                                 status="sent")
    stored = stored_event(provider=provider, type_="email.delivered", payload={
        "type": "email.delivered", "data": {"object": {"email_id": email.id, "recipient": "ada@example.com"}}})
    assert webhook_process(event_pk=stored.pk) == EventStatus.PROCESSED
    assert status(email) == "delivered"
    assert EmailEvent.objects.get().recipient_hash == recipient_hash("ada@example.com")
