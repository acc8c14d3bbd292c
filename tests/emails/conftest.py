"""Fixtures for email tests: a throwaway provider kind whose "email" adapter is a scripted fake,
a provider of it, the task queue captured, and a POST helper."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field

import pytest

from integrations.adapters.email import EmailAdapter, EmailEventData, EmailMessage, SendResult
from integrations.client.results import CallResult
from integrations.errors import ProviderUnavailable
from integrations.kinds import Kind, registered_kind
from integrations.models import Provider


@dataclass
class Outbox:
    """What the fake provider received and what it answers next (one scripted item per send:
    a SendResult or an exception to raise; "sent" when the script is empty)."""

    deduplicates: bool = False
    default_from: str = "noreply@shop.example"
    script: list = field(default_factory=list)
    calls: list[EmailMessage] = field(default_factory=list)
    gate: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self) -> list[str]:
        return [message.idempotency_key for message in self.calls]

    def sent_once_per_key(self) -> int:
        """Messages a deduplicating provider would have delivered: one per key."""
        return len(set(self.keys()))


def unavailable(code: str = "ECONN") -> ProviderUnavailable:
    return ProviderUnavailable(CallResult(ok=False, error_code=code, message="down", provider="mail"))


class FakeMailAdapter(EmailAdapter):
    outbox: Outbox  # set by the `outbox` fixture

    @property
    def deduplicates(self) -> bool:
        return self.outbox.deduplicates

    @property
    def default_from(self) -> str:
        return self.outbox.default_from

    def send(self, message: EmailMessage) -> SendResult:
        outbox = self.outbox
        if outbox.gate is not None:
            outbox.gate.wait(timeout=15)
        with outbox.lock:
            outbox.calls.append(message)
            step = outbox.script.pop(0) if outbox.script else None
        if isinstance(step, BaseException):
            raise step
        return step or SendResult(status="sent", provider_message_id=f"msg_{len(outbox.calls)}")

    def parse_event(self, payload) -> EmailEventData:
        return EmailEventData(type=payload.get("event", ""), email_id=payload.get("email_id", ""),
                              provider_message_id=payload.get("message_id", ""),
                              recipient=payload.get("recipient", ""))


FAKEMAIL = Kind(name="fakemail", label="Fake mail", adapters={"email": FakeMailAdapter})


@pytest.fixture
def outbox():
    box = Outbox()
    FakeMailAdapter.outbox = box
    with registered_kind(FAKEMAIL):
        yield box


@pytest.fixture
def mail_provider(db, outbox) -> Provider:
    return Provider.objects.create(slug="fakemail", name="Fake mail", kind="fakemail", base_url="http://mail.test")


@pytest.fixture
def tasks(monkeypatch) -> list[tuple]:
    """Tasks queued for django-q2, captured instead of sent: (func, args, kwargs) each."""
    queued: list[tuple] = []
    monkeypatch.setattr("emails.queue.async_task", lambda func, *args, **kwargs: queued.append((func, args, kwargs)))
    return queued


def run_tasks(tasks: list[tuple]) -> list:
    """Run the captured send tasks as a worker would, emptying the list."""
    from emails import tasks as email_tasks

    results = []
    while tasks:
        func, args, _ = tasks.pop(0)
        assert func == "emails.tasks.send"
        results.append(email_tasks.send(*args))
    return results


EMAIL = {"to": "ada@example.com", "subject": "Your order", "text": "Thanks for order 42.",
         "metadata": {"order": "42"}}


@pytest.fixture
def post_email(api_client, mail_provider, tasks, django_capture_on_commit_callbacks):
    """POST /api/v1/emails with a key (a fresh one unless given); returns the response."""

    def post(body=None, key: str | None = None, client=None, **extra):
        key = key if key is not None else uuid.uuid4().hex
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not False else {}
        payload = EMAIL if body is None else body
        with django_capture_on_commit_callbacks(execute=True):
            return (client or api_client).post("/api/v1/emails", data=json.dumps(payload),
                                               content_type="application/json", **headers, **extra)

    return post
