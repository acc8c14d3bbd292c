"""Putting an event's processing on the django-q2 queue (ids only, never secrets)."""

from __future__ import annotations

import threading

from django.db import transaction
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

TASK = "webhooks.tasks.process_event"

_local = threading.local()


def _broker() -> Broker:
    # django-q2 opens a new broker (for Redis: a new connection and handshake) on every
    # async_task unless given one; at intake rates that handshake cost more than the
    # rest of the request. One per thread; redis-py's pool resets itself after a fork.
    broker = getattr(_local, "broker", None)
    if broker is None:
        broker = _local.broker = get_broker()
    return broker


def enqueue(*, event_pk: int, request_id: str | None) -> None:
    """Queue one processing attempt now. The request id travels along for the logs."""
    async_task(TASK, event_pk, request_id=request_id, broker=_broker())


def enqueue_on_commit(*, event_pk: int, request_id: str | None) -> None:
    """Queue it once the current transaction commits, so the worker finds the row.

    Robust: if the broker is down the error is logged and the caller carries on. The
    row is stored as `received`, so the sweeper enqueues it later; the provider gets
    its 200 rather than a 500 that would make it send the event again.
    """
    transaction.on_commit(lambda: enqueue(event_pk=event_pk, request_id=request_id), robust=True)
