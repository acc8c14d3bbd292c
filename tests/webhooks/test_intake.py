"""Intake view: answers, storage, duplicates, size limits, rotation, and no broker call."""

from __future__ import annotations

import io
import json
import logging
import socket
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY

from integrations.credentials import credential_rotate
from integrations.models import Credential
from tests.support import webhook_signing as signing
from webhooks.errors import PayloadTooLarge
from webhooks.models import EventStatus, WebhookEvent
from webhooks.views import read_body


def _metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_new_event_is_stored_as_received_for_the_relay_and_nothing_is_queued(sender_of, client, task_queue):
    sender = sender_of("stripe")
    event_id, body = sender.body(type_="charge.succeeded")
    response = sender.post(client, body, sender.headers(body, event_id), HTTP_X_REQUEST_ID="req-abc.1")
    assert response.json() == {"received": True, "duplicate": False}
    assert response["X-Request-ID"] == "req-abc.1"
    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts, event.type) == (EventStatus.RECEIVED, 0, "charge.succeeded")
    assert bytes(event.raw_body) == body and event.payload["id"] == event_id
    assert event.request_id == "req-abc.1"
    assert event.enqueued_at is None and task_queue.size() == 0  # the relay's job
    assert task_queue.relay() == [event.pk]
    [task] = task_queue.take()
    assert task["func"] == "webhooks.tasks.process_events"
    assert task["args"] == ([[event.pk, "req-abc.1"]],) and task["kwargs"] == {}


def test_duplicate_delivery_answers_duplicate_and_stores_nothing(sender, client, task_queue):
    event_id, body = sender.body()
    first = sender.post(client, body, sender.headers(body, event_id))
    again = sender.post(client, body, sender.headers(body, event_id))
    assert first.json() == {"received": True, "duplicate": False}
    assert again.status_code == 200 and again.json() == {"received": True, "duplicate": True}
    assert WebhookEvent.objects.count() == 1
    assert len(task_queue.relay()) == 1 and len(task_queue.take()) == 1


def test_the_same_event_id_from_two_providers_is_two_events(sender_of, client):
    a, b = sender_of("stripe"), sender_of("stripe")
    event_id, body = a.body()
    assert a.post(client, body, a.headers(body, event_id)).json()["duplicate"] is False
    assert b.post(client, body, b.headers(body, event_id)).json()["duplicate"] is False
    assert WebhookEvent.objects.count() == 2


def test_sendgrid_batch_stores_one_event_per_item(sender_of, client):
    sender = sender_of("sendgrid")
    items = [{"sg_event_id": f"sg{i}", "event": kind, "email": "a@example.com"}
             for i, kind in enumerate(["processed", "delivered", "open"])]
    body = signing.body_of(items)
    assert sender.post(client, body, sender.headers(body, "")).json() == {"received": True, "duplicate": False}
    events = {e.event_id: e for e in WebhookEvent.objects.all()}
    assert set(events) == {"sg0", "sg1", "sg2"}
    assert events["sg1"].type == "delivered" and events["sg1"].payload == items[1]
    assert bytes(events["sg2"].raw_body) == body  # the delivery exactly as signed

    # A redelivery is a duplicate; a batch with one new item is not.
    assert sender.post(client, body, sender.headers(body, "")).json()["duplicate"] is True
    body2 = signing.body_of([items[0], {"sg_event_id": "sg9", "event": "click"}])
    assert sender.post(client, body2, sender.headers(body2, "")).json()["duplicate"] is False
    assert WebhookEvent.objects.count() == 4


def test_stored_headers_have_signatures_redacted(sender, client):
    event_id, body = sender.body()
    headers = sender.headers(body, event_id)
    sender.post(client, body, headers)
    stored = WebhookEvent.objects.get().headers
    assert stored[sender.signature_header] == "[redacted]"
    assert headers[sender.signature_header] not in str(stored)


def test_unknown_and_disabled_providers_are_404(sender_of, client):
    response = client.post("/webhooks/nope/", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    sender = sender_of("stripe")
    sender.provider.enabled = False
    sender.provider.save()
    event_id, body = sender.body()
    response = sender.post(client, body, sender.headers(body, event_id))
    assert response.status_code == 404 and WebhookEvent.objects.count() == 0


def test_only_post_is_allowed(sender_of, client):
    sender = sender_of("stripe")
    response = client.get(f"/webhooks/{sender.provider.slug}/")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response.json()["error"]["type"] == "method_not_allowed"


@override_settings(WEBHOOK_MAX_BODY_BYTES=100)
def test_body_over_the_limit_is_413_and_stores_nothing(sender_of, client):
    sender = sender_of("stripe")
    event_id, _ = sender.body()
    body = signing.body_of({"id": event_id, "type": "x", "pad": "p" * 200})
    response = sender.post(client, body, sender.headers(body, event_id))
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"
    assert WebhookEvent.objects.count() == 0


class _Request:
    """Just what read_body uses: META and a stream that counts what was read."""

    def __init__(self, content_length: str | None, data: bytes):
        self.META = {} if content_length is None else {"CONTENT_LENGTH": content_length}
        self.stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)


def test_declared_length_over_the_limit_is_refused_before_reading():
    request = _Request("1000001", b"x" * 1000001)
    with pytest.raises(PayloadTooLarge):
        read_body(request, 1000000)
    assert request.stream.tell() == 0


def test_undeclared_length_is_cut_off_while_reading():
    request = _Request(None, b"x" * 5000)
    with pytest.raises(PayloadTooLarge):
        read_body(request, 1000)
    assert request.stream.tell() == 1001  # never more than limit + 1 in memory
    assert read_body(_Request("garbage", b"abc"), 10) == b"abc"


@pytest.mark.django_db(transaction=True)
def test_a_real_socket_gets_413_without_sending_the_body(live_server, sender_of):
    """A sender announcing 5 MB gets its answer at once: the server does not wait for it."""
    sender = sender_of("stripe")
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"POST /webhooks/{sender.provider.slug}/ HTTP/1.1\r\nHost: {host}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{".encode())
        answer = b""
        while b"}}" not in answer:  # the JSON error body ends the answer
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"payload_too_large"' in answer


@pytest.mark.parametrize("cache_seconds", [0, 5], ids=["cache-off", "cache-on"])
def test_rotation_old_secret_verifies_during_grace_and_fails_after(sender_of, client, settings, monkeypatch,
                                                                   cache_seconds):
    settings.WEBHOOK_VERIFY_CACHE_SECONDS = cache_seconds
    sender = sender_of("stripe")
    old = sender.secret
    credential_rotate(provider=sender.provider, purpose="webhook_secret", value="whsec_new_secret_after_rotation",
                      grace=timedelta(hours=1))
    for secret in (old, "whsec_new_secret_after_rotation"):
        event_id, body = sender.body()
        assert sender.post(client, body, sender.headers(body, event_id, secret=secret)).status_code == 200

    # The grace period ends with nothing saved: time passes (with the cache on, the
    # secrets loaded above are still cached; each carries its end of validity).
    later = timezone.now() + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    event_id, body = sender.body()
    response = sender.post(client, body, sender.headers(body, event_id, secret=old))
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_signature"
    event_id, body = sender.body()
    assert sender.post(client, body, sender.headers(body, event_id, secret="whsec_new_secret_after_rotation")
                       ).status_code == 200


def test_rotation_without_grace_stops_the_old_secret_at_once(sender_of, client):
    sender = sender_of("standard")
    new = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="[:44]
    credential_rotate(provider=sender.provider, purpose="webhook_secret", value=new)
    event_id, body = sender.body()
    assert sender.post(client, body, sender.headers(body, event_id)).status_code == 400
    assert sender.post(client, body, sender.headers(body, event_id, secret=new)).status_code == 200


def test_provider_without_a_webhook_secret_refuses_everything(sender_of, client):
    sender = sender_of("github")
    Credential.objects.filter(provider=sender.provider).delete()
    event_id, body = sender.body()
    response = sender.post(client, body, sender.headers(body, event_id))
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_signature"


def test_refusals_are_counted_and_logged_without_secrets_or_signatures(sender_of, client, caplog):
    sender = sender_of("stripe")
    event_id, body = sender.body()
    headers = sender.headers(body, event_id, secret="whsec_wrong")
    before = _metric("webhook_intake_total", provider=sender.provider.slug, outcome="invalid_signature")
    with caplog.at_level(logging.DEBUG):
        response = sender.post(client, body, headers)
    assert response.status_code == 400
    assert _metric("webhook_intake_total", provider=sender.provider.slug, outcome="invalid_signature") == before + 1
    refused = [r for r in caplog.records if r.getMessage() == "webhook refused"]
    assert refused and refused[0].reason == "invalid_signature"
    everything = caplog.text + response.content.decode() + str([r.__dict__ for r in caplog.records])
    for secret in (sender.secret, headers["stripe-signature"], event_id):
        assert secret not in everything


def test_accepted_and_duplicate_deliveries_are_counted(sender_of, client):
    sender = sender_of("razorpay")
    slug = sender.provider.slug
    event_id, body = sender.body()
    sender.post(client, body, sender.headers(body, event_id))
    sender.post(client, body, sender.headers(body, event_id))
    assert _metric("webhook_intake_total", provider=slug, outcome="accepted") == 1
    assert _metric("webhook_intake_total", provider=slug, outcome="duplicate") == 1


@pytest.mark.django_db(transaction=True)  # autocommit, as in production
def test_the_intake_makes_no_broker_call_and_answers_200_with_the_broker_down(
        sender_of, client, task_queue, monkeypatch):
    """Every way django-q2 reaches a broker fails and is counted: a delivery touches none
    of them, is answered 200 and its row is committed; the relay then fails (rolling its
    claim back) until the broker is back."""
    from django_q import brokers, tasks
    from django_q.brokers import orm, redis_broker

    calls = []

    def down(name):
        def fail(*args, **kwargs):
            calls.append(name)
            raise ConnectionError("broker unreachable")
        return fail

    with monkeypatch.context() as patched:
        for target, name in ((tasks, "async_task"), (brokers, "get_broker"), (tasks, "get_broker"),
                             (orm.ORM, "enqueue"), (redis_broker.Redis, "enqueue"),
                             (type(task_queue.broker), "enqueue")):
            patched.setattr(target, name, down(f"{target.__name__}.{name}"))
        senders = [sender_of(kind) for kind in ("standard", "stripe", "sendgrid")]
        for sender in senders:
            event_id, body = sender.body()
            response = sender.post(client, body, sender.headers(body, event_id))
            assert response.status_code == 200 and response.json() == {"received": True, "duplicate": False}
        assert calls == []
        assert WebhookEvent.objects.filter(status=EventStatus.RECEIVED, enqueued_at__isnull=True).count() == 3

        from webhooks.relay import webhook_relay_once

        with pytest.raises(ConnectionError):
            webhook_relay_once(broker=task_queue.broker)
        assert calls  # the relay did try the broker...
    # ...and its claim was rolled back: the events wait for the next pass.
    assert WebhookEvent.objects.filter(enqueued_at__isnull=True).count() == 3
    assert task_queue.size() == 0
    assert len(task_queue.relay()) == 3
    assert len(task_queue.take_events()) == 3


def test_a_later_error_page_does_not_show_the_secrets_even_in_debug(sender_of, settings, monkeypatch):
    """The plaintext secrets are gone from the stack before the event is stored."""
    from django.test import Client

    sender = sender_of("standard")
    settings.DEBUG = True  # the technical 500 page, with every frame's variables

    def boom(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(WebhookEvent.objects, "create", boom)
    event_id, body = sender.body()
    response = sender.post(Client(raise_request_exception=False), body, sender.headers(body, event_id))
    page = response.content.decode()
    assert response.status_code == 500 and "webhook_receive" in page  # frames are shown
    assert sender.secret.removeprefix("whsec_") not in page


def test_an_error_report_during_verification_hides_the_secrets(sender_of, settings, monkeypatch):
    """What a mailed or logged error report (DEBUG off) shows of the verifying frames."""
    import sys

    from django.core.signals import got_request_exception
    from django.test import Client
    from django.views.debug import ExceptionReporter

    sender = sender_of("standard")
    settings.DEBUG = False

    def boom(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr("webhooks.schemes.standard.check_timestamp", boom)
    reports = []

    def report(**kwargs):
        reports.append(ExceptionReporter(kwargs["request"], *sys.exc_info(), is_email=True).get_traceback_text())

    got_request_exception.connect(report)
    try:
        event_id, body = sender.body()
        response = sender.post(Client(raise_request_exception=False), body, sender.headers(body, event_id))
    finally:
        got_request_exception.disconnect(report)
    assert response.status_code == 500 and sender.secret not in response.content.decode()
    [text] = reports
    assert "in _verify" in text and "in verify" in text  # the frames holding secrets are reported
    assert sender.secret.removeprefix("whsec_") not in text
    assert "********" in text


def test_meta_headers_read_the_environ_like_request_headers():
    from django.test import RequestFactory

    from webhooks.views import MetaHeaders

    request = RequestFactory().post("/webhooks/x/", data=b"{}", content_type="application/json",
                                    HTTP_WEBHOOK_ID="msg_1", HTTP_X_HUB_SIGNATURE_256="sha256=ab")
    headers = MetaHeaders(request.META)
    assert headers["webhook-id"] == "msg_1" and headers.get("x-hub-signature-256") == "sha256=ab"
    assert headers["content-type"] == "application/json"
    assert "webhook-id" in headers and "stripe-signature" not in headers and 5 not in headers
    assert headers.get("stripe-signature", "") == ""
    assert dict(headers) == {name.lower(): value for name, value in request.headers.items()}
    assert len(headers) == len(request.headers)


@pytest.mark.parametrize("body", [
    b'{\n  "type": "test.event",\n  "data": {"amount": 12345678901234567890, "ratio": 1.50}\n}',
    '{"type": "test.event", "data": {"name": "Zo\u00eb \u2713"}}'.encode(),
    b'{"type": "test.event", "data": {"k": 1, "k": 2}, "escaped": "caf\\u00e9 \\"q\\""}',
    # jsonb keeps numbers as numeric: 1e5 would read back as the int 100000.
    b'{"type": "test.event", "data": {"amount": 1e5, "small": 2.5E-3, "big": 1E+2}}',
    # Overflows numeric; Python reads 0.0.
    b'{"type": "test.event", "data": {"tiny": 1e-20000}}',
    b'{"type": "test.event", "data": {"long": 0.' + b"1" * 60 + b'}}',
    # UTF-16: every byte is ASCII, but it is not UTF-8 text.
    '{"type": "test.event", "data": {"note": "plain"}}'.encode("utf-16-le"),
], ids=["ascii-formatted", "non-ascii", "duplicate-key-and-escapes", "exponents", "underflow", "long-number",
        "utf-16"])
def test_the_stored_payload_is_the_body_as_python_reads_it(sender_of, client, body):
    """Plain bodies are stored as their own JSON text on PostgreSQL, others encoded again:
    read back, both must equal what json.loads makes of the body, types included."""
    sender = sender_of("github")
    assert sender.post(client, body, sender.headers(body, "evt_payload")).status_code == 200
    stored = WebhookEvent.objects.get(event_id="evt_payload")
    assert json.dumps(stored.payload, sort_keys=True) == json.dumps(json.loads(body), sort_keys=True)
    assert bytes(stored.raw_body) == body
