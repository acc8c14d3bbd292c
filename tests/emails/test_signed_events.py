"""Issue 12: provider events signed the way SendGrid (ECDSA P-256 over timestamp + body, with a
key pair generated here by `cryptography`) and Mailgun (HMAC-SHA256 of timestamp + token, in the
body) sign them, end to end through the real parts:

- the email is created through the API and sent by the kind's real adapter (its HTTP answered
  by `responses` the way SendGrid/Mailgun answer), so its `provider_message_id` is what a real
  send leaves;
- each delivery is POSTed to /webhooks/<slug>/ with Django's test client, verified by the
  kind's scheme from the provider's stored credential, and stored by the intake;
- every newly stored event is processed with `webhook_process(event_pk=...)`, as a worker does.

Asserted on rows: webhook events, the email's status, its events and its status history.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import timedelta

import pytest
import responses
from django.test import Client

from emails.models import Email, EmailEvent, EmailStatusChange
from emails.privacy import recipient_hash
from integrations.credentials import credential_rotate
from integrations.models import Provider
from tests.emails_providers.conftest import MAILGUN_URL, POLICY, SENDGRID_URL
from tests.support import webhook_signing as signing
from webhooks import verify_cache
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_process

from .conftest import run_tasks

pytestmark = pytest.mark.django_db

ADA = "ada@example.com"
RECEIVED = {"received": True, "duplicate": False}
DUPLICATE = {"received": True, "duplicate": True}


class Channel:
    """One email provider of a real kind: sends through its adapter, and builds event
    deliveries in its wire format, signed as it signs them (or not quite)."""

    kind: str
    purpose: str  # the credential purpose the kind's webhook scheme verifies with
    # Our normalised event names -> the provider's own fields for such an event.
    raw: dict[str, dict]
    # What the intake stores as the WebhookEvent type for each normalised event.
    stored_type: dict[str, str]

    def __init__(self, *, api_client, tasks, capture):
        self.api_client, self.tasks, self.capture = api_client, tasks, capture
        self.client = Client()  # the provider's side: Django's test client, no API key
        self._clock = itertools.count(int(time.time()) - 600)  # event times, strictly increasing
        self.provider = self.make_provider()

    # --- provider specifics -------------------------------------------------------------
    def make_provider(self) -> Provider:
        raise NotImplementedError

    def answer_send(self, rsps: responses.RequestsMock, message_id: str) -> str:
        """Register the provider's answer to one send; returns the id the email should keep."""
        raise NotImplementedError

    def event(self, email: Email, name: str, *, event_id: str | None = None, echo_email_id: bool = True) -> dict:
        """One event about `email` in the provider's format (`name`: our normalised type)."""
        raise NotImplementedError

    def new_key(self):
        """A verification key pair (SendGrid) or signing secret (Mailgun) of our own making."""
        raise NotImplementedError

    def credential(self, key) -> str:
        """What staff enter as the provider's webhook credential for `key`."""
        raise NotImplementedError

    def delivery(self, events: list[dict], *, timestamp: int | None = None, key=None) -> tuple[bytes, dict]:
        """(body, headers) of a delivery signed with `key`: by default the provider's own, so
        correctly signed."""
        raise NotImplementedError

    def tampered(self, body: bytes, headers: dict, events: list[dict]) -> tuple[bytes, dict]:
        """`events` in place of the signed delivery's own, its signature kept."""
        raise NotImplementedError

    def unsigned(self, events: list[dict]) -> tuple[bytes, dict]:
        raise NotImplementedError

    @staticmethod
    def event_id_of(event: dict) -> str:
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------
    def send(self, to: str = ADA) -> Email:
        """An email created through the API and sent by the real adapter: `sent`, with the
        provider's message id as the adapter read it from the provider's answer."""
        message_id = uuid.uuid4().hex[:20]
        with responses.RequestsMock() as rsps:
            expected_id = self.answer_send(rsps, message_id)
            with self.capture(execute=True):
                answer = self.api_client.post(
                    "/api/v1/emails", content_type="application/json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
                    data=json.dumps({"to": to, "from": "shop@example.com", "subject": "Your order",
                                     "text": "Thanks for order 42.", "provider": self.provider.slug}))
            assert answer.status_code == 202, answer.content
            assert run_tasks(self.tasks) == ["sent"]
            assert len(rsps.calls) == 1
        email = Email.objects.get(pk=answer.json()["id"])
        assert (email.status, email.provider_message_id) == ("sent", expected_id)
        return email

    def post(self, body: bytes, headers: dict):
        return self.client.post(f"/webhooks/{self.provider.slug}/", data=body, content_type="application/json",
                                **signing.as_meta(headers))

    def deliver(self, *events: dict) -> list[WebhookEvent]:
        """POST a correctly signed delivery of `events` (200, new), then process what it stored."""
        answer = self.post(*self.delivery(list(events)))
        assert (answer.status_code, answer.json()) == (200, RECEIVED), answer.content
        return process_new()

    def next_time(self) -> int:
        return next(self._clock)

    def forged(self, events: list[dict]) -> tuple[bytes, dict]:
        """A delivery validly signed, but with another key / secret than the provider's."""
        return self.delivery(events, key=self.new_key())

    def rotate(self, *, grace: timedelta | None) -> object:
        """Give the provider a new webhook key (the old one valid for `grace`); returns the old."""
        old, self.key = self.key, self.new_key()
        credential_rotate(provider=self.provider, purpose=self.purpose, value=self.credential(self.key), grace=grace)
        return old


class SendGrid(Channel):
    kind = "sendgrid"
    raw = {
        "processed": {"event": "processed"},
        "delivered": {"event": "delivered", "response": "250 2.0.0 OK", "ip": "168.245.1.1", "tls": 1},
        "bounced": {"event": "bounce", "type": "bounce", "status": "5.1.1",
                    "reason": "550 5.1.1 The email account that you tried to reach does not exist."},
        "deferred": {"event": "deferred", "response": "421 4.7.0 Try again later", "attempt": "3"},
        "opened": {"event": "open", "useragent": "Mozilla/5.0", "ip": "203.0.113.9", "sg_machine_open": False},
        "clicked": {"event": "click", "url": "https://shop.example/orders/42", "url_offset": {"index": 0,
                                                                                              "type": "html"}},
        "complained": {"event": "spamreport"},
    }
    stored_type = {name: fields["event"] for name, fields in raw.items()}

    purpose = "webhook_public_key"

    def make_provider(self) -> Provider:
        self.key = self.new_key()
        provider = Provider.objects.create(slug="sendgrid-events", name="SendGrid", kind="sendgrid",
                                           base_url=SENDGRID_URL, **POLICY)
        credential_rotate(provider=provider, purpose="api_key", value="SG.test-key")
        credential_rotate(provider=provider, purpose=self.purpose, value=self.credential(self.key))
        return provider

    def new_key(self) -> signing.SendGridKey:
        return signing.SendGridKey()  # a real P-256 key pair (`cryptography`)

    def credential(self, key: signing.SendGridKey) -> str:
        return key.public_b64  # the verification key SendGrid shows: base64 DER of the public half

    def answer_send(self, rsps, message_id):
        # SendGrid answers 202 with no body; the message id is in X-Message-Id.
        rsps.post(f"{SENDGRID_URL}/v3/mail/send", status=202, body=b"", headers={"X-Message-Id": message_id})
        return message_id

    def event(self, email, name, *, event_id=None, echo_email_id=True):
        item = {"email": ADA, "timestamp": self.next_time(), "smtp-id": f"<{email.provider_message_id}@sendgrid>",
                "sg_event_id": event_id or f"sg_{uuid.uuid4().hex}",
                # The X-Message-Id answered at send time, plus SendGrid's filter suffix.
                "sg_message_id": f"{email.provider_message_id}.filterdrecv-p3mdw1-756b745b58-kj5qz-18-5F.0",
                "category": [], **self.raw[name]}
        if echo_email_id:
            item["email_id"] = email.id  # custom_args come back as top-level fields of every event
        return item

    def delivery(self, events, *, timestamp=None, key=None):
        body = signing.body_of(events)
        return body, (key or self.key).headers(body=body, timestamp=timestamp)

    def tampered(self, body, headers, events):
        return signing.body_of(events), headers

    def unsigned(self, events):
        body = signing.body_of(events)
        return body, {"x-twilio-email-event-webhook-timestamp": str(int(time.time()))}

    @staticmethod
    def event_id_of(event):
        return event["sg_event_id"]


class Mailgun(Channel):
    kind = "mailgun"
    raw = {
        "processed": {"event": "accepted"},
        "delivered": {"event": "delivered", "delivery-status": {"code": 250, "message": "OK", "tls": True}},
        "bounced": {"event": "failed", "severity": "permanent", "reason": "bounce",
                    "delivery-status": {"code": 550, "message": "5.1.1 No such user"}},
        "deferred": {"event": "failed", "severity": "temporary", "reason": "generic",
                     "delivery-status": {"code": 421, "message": "4.7.0 Try again later"}},
        "opened": {"event": "opened", "client-info": {"client-type": "browser"}},
        "clicked": {"event": "clicked", "url": "https://shop.example/orders/42"},
        "complained": {"event": "complained"},
    }
    stored_type = {name: fields["event"] for name, fields in raw.items()}
    DOMAIN = "mg.example.com"

    purpose = "webhook_secret"

    def make_provider(self) -> Provider:
        self.key = signing.MAILGUN_SECRET
        provider = Provider.objects.create(slug="mailgun-events", name="Mailgun", kind="mailgun",
                                           base_url=MAILGUN_URL, **POLICY)
        credential_rotate(provider=provider, purpose="basic_username", value="api")
        credential_rotate(provider=provider, purpose="basic_password", value="mailgun-api-key-123")
        credential_rotate(provider=provider, purpose=self.purpose, value=self.credential(self.key))
        return provider

    def new_key(self) -> str:
        return f"mailgun-signing-key-{uuid.uuid4().hex}"

    def credential(self, key: str) -> str:
        return key  # the HTTP webhook signing key itself

    def answer_send(self, rsps, message_id):
        # Mailgun answers with the Message-Id in angle brackets; its events carry it without.
        rsps.post(f"{MAILGUN_URL}/messages", json={"id": f"<{message_id}@{self.DOMAIN}>",
                                                   "message": "Queued. Thank you."})
        return f"{message_id}@{self.DOMAIN}"

    def event(self, email, name, *, event_id=None, echo_email_id=True):
        data = {"id": event_id or uuid.uuid4().hex[:22], "timestamp": self.next_time() + 0.25, "log-level": "info",
                "recipient": ADA, "recipient-domain": "example.com",
                "message": {"headers": {"message-id": email.provider_message_id, "subject": "Your order"}},
                **self.raw[name]}
        if echo_email_id:
            data["user-variables"] = {"email_id": email.id}  # the `v:email_id` sent with the message
        return data

    def delivery(self, events, *, timestamp=None, key=None):
        [event] = events  # Mailgun posts one event per delivery
        return signing.mailgun_body(event, secret=key or self.key, timestamp=timestamp), {}

    def tampered(self, body, headers, events):
        [event] = events
        data = json.loads(body)
        data["event-data"] = event  # Mailgun signs the timestamp and token, not the event
        return signing.body_of(data), headers

    def unsigned(self, events):
        [event] = events
        return signing.body_of({"event-data": event}), {}

    @staticmethod
    def event_id_of(event):
        return event["id"]


@pytest.fixture(params=[SendGrid, Mailgun], ids=lambda cls: cls.kind)
def channel(request, api_client, tasks, django_capture_on_commit_callbacks):
    verify_cache.clear()  # slugs repeat across tests: start uncached
    yield request.param(api_client=api_client, tasks=tasks, capture=django_capture_on_commit_callbacks)
    verify_cache.clear()


def process_new() -> list[WebhookEvent]:
    """Process every event the intake stored and no worker has taken yet, as a worker would."""
    new = list(WebhookEvent.objects.filter(status=EventStatus.RECEIVED).order_by("pk"))
    for event in new:
        assert webhook_process(event_pk=event.pk) == EventStatus.PROCESSED, event.last_error
        event.refresh_from_db()
    return new


def status(email: Email) -> str:
    email.refresh_from_db()
    return email.status


def kept(email: Email) -> list[tuple[str, str]]:
    """The events kept on the email: (type, provider event id), in time order."""
    return list(EmailEvent.objects.filter(email=email).values_list("type", "provider_event_id"))


def webhook_changes(email: Email) -> list[tuple[str, str]]:
    return list(email.history.filter(source__startswith="webhook:").values_list("from_status", "to_status"))


def snapshot() -> dict:
    """Every row an event delivery or its processing could touch."""
    return {
        "webhook_events": list(WebhookEvent.objects.order_by("pk").values_list(
            "pk", "event_id", "status", "attempts", "subject_id")),
        "emails": list(Email.objects.order_by("pk").values_list("pk", "status", "provider_message_id", "updated")),
        "email_events": list(EmailEvent.objects.order_by("pk").values_list("pk", "email_id", "type",
                                                                            "provider_event_id")),
        "history": list(EmailStatusChange.objects.order_by("pk").values_list("pk", "to_status")),
    }


def refused(answer) -> bool:
    return answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_signature"


# --- statuses -------------------------------------------------------------------------------
def test_signed_events_move_their_emails_forward_and_are_kept_on_them(channel, api_client):
    first, second = channel.send(), channel.send(to="bo@example.com")
    delivered = channel.event(first, "delivered")
    bounced = channel.event(second, "bounced")

    [stored] = channel.deliver(delivered)
    assert (stored.event_id, stored.type) == (channel.event_id_of(delivered), channel.stored_type["delivered"])
    assert (stored.status, stored.subject_type, stored.subject_id) == (EventStatus.PROCESSED, "emails.email",
                                                                       first.id)
    assert (status(first), status(second)) == ("delivered", "sent")

    [stored] = channel.deliver(bounced)
    assert (stored.type, stored.subject_id) == (channel.stored_type["bounced"], second.id)
    assert (status(first), status(second)) == ("delivered", "bounced")

    assert kept(first) == [("delivered", channel.event_id_of(delivered))]
    assert kept(second) == [("bounced", channel.event_id_of(bounced))]
    assert EmailEvent.objects.get(email=first).recipient_hash == recipient_hash(ADA)
    assert webhook_changes(first) == [("sent", "delivered")]
    assert webhook_changes(second) == [("sent", "bounced")]
    body = api_client.get(f"/api/v1/emails/{first.id}").json()
    assert body["status"] == "delivered" and [e["type"] for e in body["events"]] == ["delivered"]


def test_events_find_the_email_by_the_message_id_its_send_stored(channel):
    """Without our id echoed back, the provider's message id as the adapter stored it at send
    time must match the one its events carry."""
    email = channel.send()

    [stored] = channel.deliver(channel.event(email, "delivered", echo_email_id=False))

    assert stored.subject_id == email.id and status(email) == "delivered"


def test_a_late_deferred_after_delivered_leaves_it_delivered(channel):
    early, late = channel.send(), channel.send()
    channel.deliver(channel.event(late, "delivered"))

    deferred = channel.event(late, "deferred")
    [stored] = channel.deliver(deferred)

    assert stored.status == EventStatus.PROCESSED and status(late) == "delivered"
    assert [t for t, _ in kept(late)] == ["delivered", "deferred"]
    assert webhook_changes(late) == [("sent", "delivered")]
    # In order, deferred is progress and delivered after it too.
    channel.deliver(channel.event(early, "deferred"))
    assert status(early) == "deferred"
    channel.deliver(channel.event(early, "delivered"))
    assert status(early) == "delivered"
    assert webhook_changes(early) == [("sent", "deferred"), ("deferred", "delivered")]


def test_opens_and_clicks_are_recorded_without_a_status_change(channel):
    email = channel.send()

    channel.deliver(channel.event(email, "opened"))
    channel.deliver(channel.event(email, "clicked"))
    assert status(email) == "sent"
    channel.deliver(channel.event(email, "delivered"))
    channel.deliver(channel.event(email, "opened"))

    assert status(email) == "delivered"
    assert [t for t, _ in kept(email)] == ["opened", "clicked", "delivered", "opened"]
    assert webhook_changes(email) == [("sent", "delivered")]


# --- duplicates -------------------------------------------------------------------------------
def test_the_same_delivery_again_is_a_duplicate_and_changes_nothing(channel):
    email = channel.send()
    body, headers = channel.delivery([channel.event(email, "delivered")])
    assert channel.post(body, headers).json() == RECEIVED
    process_new()
    before = snapshot()

    again = channel.post(body, headers)
    # A provider's retry is signed again, later: still the same event.
    resigned = channel.post(*channel.delivery(json.loads(body) if channel.kind == "sendgrid"
                                              else [json.loads(body)["event-data"]],
                                              timestamp=int(time.time()) - 30))

    assert (again.status_code, again.json()) == (200, DUPLICATE)
    assert (resigned.status_code, resigned.json()) == (200, DUPLICATE)
    assert process_new() == []
    assert snapshot() == before and status(email) == "delivered"


def test_a_processed_event_processed_again_adds_nothing(channel):
    email = channel.send()
    [stored] = channel.deliver(channel.event(email, "bounced"))
    before = snapshot()

    assert webhook_process(event_pk=stored.pk) is None  # already processed: not due

    assert snapshot() == before


# --- bad signatures -------------------------------------------------------------------------
def test_a_delivery_signed_with_another_key_is_refused_and_nothing_is_stored(channel):
    email = channel.send()
    before = snapshot()

    answer = channel.post(*channel.forged([channel.event(email, "delivered")]))

    assert refused(answer), answer.content
    assert not WebhookEvent.objects.exists()
    assert snapshot() == before and status(email) == "sent"


def test_a_delivery_without_a_signature_is_refused_and_nothing_is_stored(channel):
    email = channel.send()

    answer = channel.post(*channel.unsigned([channel.event(email, "delivered")]))

    assert refused(answer), answer.content
    assert not WebhookEvent.objects.exists() and status(email) == "sent"


def test_a_tampered_delivery_is_refused_and_nothing_is_stored(channel):
    """A genuine delivery's signature on other events (a complaint, which would outrank
    `delivered`): refused, and the genuine event stays the only one."""
    email = channel.send()
    body, headers = channel.delivery([channel.event(email, "delivered")])
    assert channel.post(body, headers).json() == RECEIVED
    process_new()
    before = snapshot()

    answer = channel.post(*channel.tampered(body, headers, [channel.event(email, "complained")]))

    assert refused(answer), answer.content
    assert WebhookEvent.objects.count() == 1
    assert snapshot() == before and status(email) == "delivered"


def test_a_refused_delivery_does_not_keep_the_genuine_one_from_being_stored(channel):
    """Forged first, the genuine delivery of the same event after it: stored and applied."""
    email = channel.send()
    event = channel.event(email, "bounced")

    assert refused(channel.post(*channel.forged([event])))
    channel.deliver(event)

    assert status(email) == "bounced" and kept(email) == [("bounced", channel.event_id_of(event))]


def test_every_currently_valid_key_verifies_across_a_rotation(channel):
    """Any currently valid key of the provider verifies: the old one during its grace
    period; one rotated out without grace is refused at once."""
    email = channel.send()
    old = channel.rotate(grace=timedelta(hours=1))

    channel.deliver(channel.event(email, "opened"))  # signed with the new key
    body, headers = channel.delivery([channel.event(email, "delivered")], key=old)
    assert channel.post(body, headers).json() == RECEIVED
    process_new()
    assert status(email) == "delivered" and [t for t, _ in kept(email)] == ["opened", "delivered"]

    revoked = channel.rotate(grace=None)
    before = snapshot()
    answer = channel.post(*channel.delivery([channel.event(email, "complained")], key=revoked))

    assert refused(answer), answer.content
    assert snapshot() == before and status(email) == "delivered"
    channel.deliver(channel.event(email, "clicked"))  # the newest key verifies


# --- SendGrid batches -------------------------------------------------------------------------
@pytest.fixture
def sendgrid(api_client, tasks, django_capture_on_commit_callbacks) -> SendGrid:
    verify_cache.clear()
    yield SendGrid(api_client=api_client, tasks=tasks, capture=django_capture_on_commit_callbacks)
    verify_cache.clear()


def test_a_sendgrid_batch_updates_every_email_it_names_and_is_a_duplicate_only_when_all_are(sendgrid):
    first, second = sendgrid.send(), sendgrid.send(to="bo@example.com")
    batch = [sendgrid.event(first, "delivered"), sendgrid.event(second, "bounced"), sendgrid.event(first, "opened")]

    stored = sendgrid.deliver(*batch)

    assert [e.event_id for e in stored] == [e["sg_event_id"] for e in batch]
    assert (status(first), status(second)) == ("delivered", "bounced")
    assert [t for t, _ in kept(first)] == ["delivered", "opened"]
    before = snapshot()
    assert sendgrid.post(*sendgrid.delivery(batch)).json() == DUPLICATE
    assert snapshot() == before

    late = sendgrid.event(first, "deferred")
    assert sendgrid.post(*sendgrid.delivery([batch[0], late])).json() == RECEIVED  # one of them is new
    [new] = process_new()
    assert new.event_id == late["sg_event_id"] and WebhookEvent.objects.count() == 4
    assert status(first) == "delivered" and [t for t, _ in kept(first)] == ["delivered", "opened", "deferred"]


def test_a_sendgrid_batch_with_one_tampered_item_is_refused_whole(sendgrid):
    first, second = sendgrid.send(), sendgrid.send(to="bo@example.com")
    batch = [sendgrid.event(first, "delivered"), sendgrid.event(second, "delivered")]
    body, headers = sendgrid.delivery(batch)

    answer = sendgrid.post(*sendgrid.tampered(body, headers, [batch[0], {**batch[1], **sendgrid.raw["bounced"]}]))

    assert refused(answer), answer.content
    assert not WebhookEvent.objects.exists() and (status(first), status(second)) == ("sent", "sent")
