"""Chunked webhook bodies (`Transfer-Encoding: chunked`, no Content-Length): read whole
under a real gunicorn, refused with 413 over the limit, never held past limit + 1 bytes."""

from __future__ import annotations

import io

import pytest
from django.core.handlers.wsgi import WSGIRequest

from tests.support import webhook_signing as signing
from tests.support.web_server import gunicorn_server, post_chunked
from webhooks.conf import webhook_settings
from webhooks.errors import PayloadTooLarge
from webhooks.models import WebhookEvent
from webhooks.views import READ_CHUNK_BYTES, read_body


class _Input(io.BytesIO):
    """wsgi.input as a server gives it: short reads (at most `most` bytes each), and a
    count of the largest read asked for."""

    def __init__(self, data: bytes, most: int = 1000):
        super().__init__(data)
        self.most, self.largest_ask = most, 0

    def read(self, size: int = -1) -> bytes:
        self.largest_ask = max(self.largest_ask, size)
        return super().read(self.most if size < 0 else min(size, self.most))


def _request(data: bytes, *, terminated: bool = True, content_length: str | None = None) -> WSGIRequest:
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/x/", "wsgi.input": _Input(data),
               "wsgi.url_scheme": "http", "SERVER_NAME": "testserver", "SERVER_PORT": "80"}
    if terminated:
        environ["wsgi.input_terminated"] = True
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    return WSGIRequest(environ)


# --- read_body on a fake environ ---------------------------------------------------------

def test_a_terminated_input_without_content_length_is_read_whole():
    body = bytes(range(256)) * 40  # 10 KiB arriving in short reads
    request = _request(body)
    assert read_body(request, 1_000_000) == body


def test_a_terminated_input_over_the_limit_is_refused_holding_at_most_limit_plus_one():
    request = _request(b"x" * 50_000)
    with pytest.raises(PayloadTooLarge):
        read_body(request, 5_000)
    assert request.environ["wsgi.input"].tell() == 5_001


def test_a_terminated_input_exactly_at_the_limit_is_accepted():
    assert read_body(_request(b"y" * 5_000), 5_000) == b"y" * 5_000


def test_a_terminated_input_is_read_in_bounded_chunks():
    """Even under a limit of 1 MiB, no single read asks for the whole limit."""
    request = _request(b"z" * 300_000)
    assert read_body(request, 1024 * 1024) == b"z" * 300_000
    assert 0 < request.environ["wsgi.input"].largest_ask <= READ_CHUNK_BYTES < 1024 * 1024


def test_a_declared_content_length_still_bounds_the_read_when_the_input_is_terminated():
    assert read_body(_request(b"abcdef", content_length="3"), 100) == b"abc"


def test_without_terminated_input_an_undeclared_body_is_not_read_past_the_stream():
    """PEP 3333: reading wsgi.input past CONTENT_LENGTH may block forever; only a server
    that promises the stream ends (wsgi.input_terminated) is read without a length."""
    request = _request(b"abc", terminated=False)
    assert read_body(request, 100) == b""
    assert request.environ["wsgi.input"].tell() == 0


# --- a real gunicorn -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def web_url(django_db_setup, tmp_path_factory):
    with gunicorn_server(log_dir=tmp_path_factory.mktemp("gunicorn-logs")) as url:
        yield url


def _url(web_url: str, sender) -> str:
    return f"{web_url}/webhooks/{sender.provider.slug}/"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["standard", "stripe", "razorpay", "github", "sendgrid"])
def test_a_signed_chunked_delivery_is_accepted_and_stored(web_url, sender_of, task_queue, kind):
    """(`task_queue` purges what the server queued: a Redis broker outlives the database flush.)"""
    sender = sender_of(kind)
    event_id, body = sender.body()
    headers = {"Content-Type": "application/json", **sender.headers(body, event_id)}
    answer = post_chunked(_url(web_url, sender), body, headers, chunk_size=7)
    assert answer.status == 200, answer.body
    assert answer.json() == {"received": True, "duplicate": False}
    event = WebhookEvent.objects.get()
    assert bytes(event.raw_body) == body
    assert event.provider_id == sender.provider.pk


@pytest.mark.django_db(transaction=True)
def test_a_signed_chunked_body_of_exactly_the_limit_is_accepted(web_url, sender_of):
    sender = sender_of("standard")
    limit = webhook_settings.MAX_BODY_BYTES
    prefix = b'{"type":"test.event","pad":"'
    body = prefix + b"p" * (limit - len(prefix) - 2) + b'"}'
    assert len(body) == limit
    answer = post_chunked(_url(web_url, sender), body, sender.headers(body, "evt_at_limit"))
    assert answer.status == 200, answer.body
    assert bytes(WebhookEvent.objects.get().raw_body) == body


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(web_url, sender_of):
    sender = sender_of("stripe")
    limit = webhook_settings.MAX_BODY_BYTES
    body = signing.body_of({"id": "evt_big", "type": "x", "pad": "p" * (limit + 10_000)})
    answer = post_chunked(_url(web_url, sender), body, sender.headers(body, "evt_big"))
    assert answer.status == 413, answer.body
    assert answer.json()["error"]["type"] == "payload_too_large"
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_chunked_delivery_with_a_wrong_signature_is_still_refused(web_url, sender_of):
    sender = sender_of("standard")
    event_id, body = sender.body()
    headers = sender.headers(body, event_id)
    answer = post_chunked(_url(web_url, sender), body.replace(b"test.event", b"test.evenT"), headers)
    assert answer.status == 400
    assert answer.json()["error"]["type"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
