"""Fixtures for the webhook tests: one provider per signature scheme, a sender that signs
like each provider, and the real task queue (whatever broker the run is configured with)
with the relay that fills it."""

from __future__ import annotations

import importlib
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from integrations.credentials import credential_rotate
from integrations.models import Provider
from tests.support import webhook_signing as signing

_ids = itertools.count(1)


@dataclass
class Sender:
    """Builds and signs deliveries the way one provider does."""

    provider: Provider
    kind: str
    secret: str
    has_timestamp: bool
    signature_header: str
    _body: Callable[[str, str], bytes]
    _sign: Callable[..., dict]

    def body(self, event_id: str | None = None, type_: str | None = None) -> tuple[str, bytes]:
        event_id = event_id or f"evt_{uuid.uuid4().hex[:16]}"
        return event_id, self._body(event_id, type_ or "test.event")

    def headers(self, body: bytes, event_id: str, *, secret: str | None = None,
                timestamp: int | None = None) -> dict[str, str]:
        return self._sign(body=body, event_id=event_id, secret=secret or self.secret, timestamp=timestamp)

    def post(self, client, body: bytes, headers: dict[str, str], **extra):
        return client.post(f"/webhooks/{self.provider.slug}/", data=body, content_type="application/json",
                           **signing.as_meta(headers), **extra)


def _provider(kind: str, purpose: str, secret: str) -> Provider:
    provider = Provider.objects.create(slug=f"{kind}-{next(_ids)}", name=kind, kind=kind,
                                       base_url="http://127.0.0.1:9")
    credential_rotate(provider=provider, purpose=purpose, value=secret)
    return provider


def make_sender(kind: str) -> Sender:
    """A provider of `kind` (with its verification credential) and a matching signer."""
    if kind in ("standard", "sandbox"):
        return Sender(
            _provider(kind, "webhook_secret", signing.STANDARD_SECRET), kind, signing.STANDARD_SECRET, True,
            "webhook-signature",
            lambda eid, t: signing.body_of({"type": t, "timestamp": "2026-01-01T00:00:00Z", "data": {"n": 1}}),
            lambda body, event_id, secret, timestamp: signing.standard_headers(
                body=body, msg_id=event_id, secret=secret, timestamp=timestamp))
    if kind == "stripe":
        return Sender(
            _provider(kind, "webhook_secret", signing.STRIPE_SECRET), kind, signing.STRIPE_SECRET, True,
            "stripe-signature",
            lambda eid, t: signing.body_of({"id": eid, "object": "event", "type": t, "data": {"object": {}}}),
            lambda body, event_id, secret, timestamp: signing.stripe_headers(
                body=body, secret=secret, timestamp=timestamp))
    if kind == "razorpay":
        return Sender(
            _provider(kind, "webhook_secret", signing.HMAC_SECRET), kind, signing.HMAC_SECRET, False,
            "x-razorpay-signature",
            lambda eid, t: signing.body_of({"entity": "event", "event": t, "payload": {}, "created_at": 1}),
            lambda body, event_id, secret, timestamp: signing.razorpay_headers(
                body=body, event_id=event_id, secret=secret))
    if kind == "github":
        return Sender(
            _provider(kind, "webhook_secret", signing.HMAC_SECRET), kind, signing.HMAC_SECRET, False,
            "x-hub-signature-256",
            lambda eid, t: signing.body_of({"action": "opened", "number": 1}),
            lambda body, event_id, secret, timestamp: signing.github_headers(
                body=body, delivery=event_id, event="push", secret=secret))
    if kind == "sendgrid":
        key = signing.SendGridKey()
        keys = {key.public_b64: key}

        def sign(body, event_id, secret, timestamp):
            if secret not in keys:  # "another secret": sign with an unrelated key pair
                keys[secret] = signing.SendGridKey()
            return keys[secret].headers(body=body, timestamp=timestamp)

        return Sender(
            _provider(kind, "webhook_public_key", key.public_b64), kind, key.public_b64, True,
            "x-twilio-email-event-webhook-signature",
            lambda eid, t: signing.body_of([{"sg_event_id": eid, "event": t, "email": "a@example.com",
                                             "timestamp": 1}]),
            sign)
    if kind == "mailgun":
        # Signed in the body, over its timestamp and token only: no signature header. The
        # body is signed when built; the fuzz re-signs it (signing.mailgun_resign) to vary.
        return Sender(
            _provider(kind, "webhook_secret", signing.MAILGUN_SECRET), kind, signing.MAILGUN_SECRET, True, "",
            lambda eid, t: signing.mailgun_body({"id": eid, "event": t, "recipient": "a@example.com"}),
            lambda body, event_id, secret, timestamp: {})
    raise ValueError(kind)


@pytest.fixture(autouse=True)
def _fresh_verify_cache():
    """Providers are recreated per test with the same slugs: start each test uncached."""
    from webhooks import verify_cache

    verify_cache.clear()
    yield
    verify_cache.clear()


SCHEME_KINDS = ["standard", "stripe", "razorpay", "github", "sendgrid"]


@pytest.fixture(params=SCHEME_KINDS)
def sender(request, db) -> Sender:
    return make_sender(request.param)


@pytest.fixture
def sender_of(db) -> Callable[[str], Sender]:
    return make_sender


class TaskQueue:
    """The configured django-q2 broker, read the way a worker reads it."""

    def __init__(self):
        self.broker = get_broker()

    def purge(self) -> None:
        self.broker.purge_queue()

    def size(self) -> int:
        return self.broker.queue_size()

    def relay(self) -> list[int]:
        """Run relay passes until nothing is left to relay; returns the event ids handed on."""
        from webhooks.relay import webhook_relay_once

        relayed = []
        while batch := webhook_relay_once(broker=self.broker):
            relayed += batch
        return relayed

    def take(self) -> list[dict]:
        """Every queued task (func, args, kwargs), removed from the queue."""
        tasks = []
        deadline = time.monotonic() + 5
        while self.size() and time.monotonic() < deadline:
            for task_id, payload in self.broker.dequeue() or []:
                tasks.append(SignedPackage.loads(payload))
                if task_id is not None:
                    self.broker.acknowledge(task_id)
        return tasks

    def take_events(self) -> list[tuple[int, str | None]]:
        """(event pk, request id) of every queued task's events, in queue order."""
        return [event for task in self.take() for event in task_events(task)]

    def run_all(self) -> list:
        """Run every queued task like a worker would; returns each event's result."""
        results = []
        for task in self.take():
            module, _, name = task["func"].rpartition(".")
            func = getattr(importlib.import_module(module), name)
            result = func(*task["args"], **task["kwargs"])
            results += result if task["func"] == "webhooks.tasks.process_events" else [result]
        return results


def task_events(task: dict) -> list[tuple[int, str | None]]:
    """The (event pk, request id) pairs a webhook task carries."""
    assert task["func"] == "webhooks.tasks.process_events" and task["kwargs"] == {}, task
    [events] = task["args"]
    return [(pk, request_id) for pk, request_id in events]


@pytest.fixture
def task_queue(db) -> TaskQueue:
    queue = TaskQueue()
    queue.purge()
    yield queue
    queue.purge()


def json_of(response) -> dict:
    return json.loads(response.content)
