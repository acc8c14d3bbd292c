"""Correlation ids: read or create X-Request-ID, echo it, and stamp it on every log line."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import uuid
from collections.abc import Iterator

from django.core.signals import request_finished

HEADER = "X-Request-ID"
_META_KEY = "HTTP_X_REQUEST_ID"
# A caller's id is trusted only when it looks like an id: it ends up in logs and headers.
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current() -> str | None:
    """The request id of the work in progress (a request, or a task a request caused)."""
    return _current.get()


def new_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def bound(request_id: str | None) -> Iterator[str]:
    """Run a block (a background task, a command) under a request id; creates one if None."""
    token = _current.set(request_id or new_id())
    try:
        yield _current.get()
    finally:
        _current.reset(token)


class RequestIDMiddleware:
    """Takes X-Request-ID from the request when it is a sane id, else makes one; returns it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get(_META_KEY, "")
        request_id = incoming if _VALID.match(incoming) else new_id()
        request.request_id = request_id
        # Not reset when this returns: Django logs 4xx/5xx responses (django.request) after
        # the middleware chain, and those lines need the id too. `request_finished` (sent
        # when the response is closed, after that logging) clears it.
        _current.set(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


def _clear(**kwargs) -> None:
    _current.set(None)


request_finished.connect(_clear, dispatch_uid="config.request_id.clear")


class RequestIDLogFilter(logging.Filter):
    """Adds `request_id` to every record so the JSON formatter always has the field."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current()
        return True
