"""Putting an event's processing on the django-q2 queue (ids only, never secrets)."""

from __future__ import annotations

import logging
import os
import threading
import uuid

from django.core import signing
from django.db import transaction
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.signals import pre_enqueue
from django_q.signing import PickleSerializer
from django_q.tasks import async_task
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

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


def enqueue(*, event_pk: int, request_id: str | None, confirm: bool = True) -> None:
    """Queue one processing attempt now. The request id travels along for the logs.

    With the Redis broker and `confirm=False` the push is sent but its reply is read
    later, before this thread's next push or when the current request finishes (after
    its answer went out): see `_redis_push`.
    """
    broker = _broker()
    if isinstance(broker, RedisBroker) and not Conf.SYNC:
        _redis_push(broker, _task_package(event_pk, request_id), event_pk=event_pk, confirm=confirm)
    else:
        async_task(TASK, event_pk, request_id=request_id, broker=broker, task_name=_task_name(event_pk))


def _task_name(event_pk: int) -> str:
    # Shown in django-q2's task lists and logs; more telling than its random words.
    return f"webhook event {event_pk}"


def _task_package(event_pk: int, request_id: str | None) -> bytes | str:
    """The signed package `async_task(TASK, event_pk, request_id=...)` would push, built
    without its general-purpose option handling (a third of an intake's enqueue time in
    bench/webhook_intake_profile.py). The same keys, the same signing, and the
    pre_enqueue signal; tests/webhooks/test_queue.py holds it to async_task's package."""
    task = {"id": uuid.uuid4().hex, "name": _task_name(event_pk), "func": TASK, "args": (event_pk,)}
    if Conf.CACHED:
        task["cached"] = Conf.CACHED
    if Conf.ACK_FAILURES:
        task["ack_failure"] = Conf.ACK_FAILURES
    task["kwargs"] = {"request_id": request_id}
    task["started"] = timezone.now()
    pre_enqueue.send(sender="django_q", task=task)
    return _signer().sign_object(task, serializer=PickleSerializer, compress=Conf.COMPRESSED)


def _signer() -> signing.TimestampSigner:
    """The signer SignedPackage.dumps makes anew for every task, made once per thread."""
    signer = getattr(_local, "signer", None)
    if signer is None:
        signer = _local.signer = signing.TimestampSigner(key=Conf.SECRET_KEY, salt=Conf.PREFIX)
    return signer


def _redis_push(broker: RedisBroker, package: bytes | str, *, event_pk: int, confirm: bool) -> None:
    """RPUSH the package on a connection of this thread's own, taken from the broker's
    pool settings: the redis-py client's per-command bookkeeping (pool checkout, retry
    wrapper, instrumentation) costs as much as the round trip.

    Unconfirmed (intake): the command is written to Redis before the delivery is
    answered, and its reply (the queue's length, or an error) is read afterwards, by
    `confirm_pushes` when the request finishes or before the next push. Waiting for it
    in the request cost the intake a blocking round trip per delivery. An error reply,
    or a connection lost before the reply, is logged with the event ids; those events
    stay `received` and the sweeper enqueues them again (as when the broker is down).

    A connection found closed (a Redis restart, an idle timeout) is replaced before the
    push, and a push that fails on the connection is tried once more on a fresh one; a
    second failure propagates (the caller logs it, the sweeper catches up).
    """
    pending = _pending()
    for attempt in (1, 2):
        conn = _push_connection(broker)
        try:
            _read_pending(conn, pending)
            if conn.can_read(timeout=0):  # nothing is owed: the server closed it (EOF)
                raise RedisConnectionError("connection closed by the server")
            conn.send_command("RPUSH", broker.list_key, package)
            pending.append(event_pk)
            if confirm:
                _read_pending(conn, pending)
            return
        except (RedisConnectionError, RedisTimeoutError, OSError):
            # Sent but unconfirmed pushes may or may not have arrived: a retry may queue
            # one twice, which is harmless (the event row decides what runs).
            _drop_connection(conn, pending)
            if attempt == 2:
                raise
        except BaseException:
            _drop_connection(conn, pending)
            raise


def _pending() -> list[int]:
    """Event ids whose RPUSH reply this thread has not read yet, oldest first."""
    pending = getattr(_local, "pending", None)
    if pending is None:
        pending = _local.pending = []
    return pending


def _read_pending(conn, pending: list[int]) -> None:
    """Read the replies owed on `conn`, in order; raise what reading raises, after
    logging which events it concerns."""
    while pending:
        try:
            conn.read_response()
        except RedisError as err:
            if isinstance(err, RedisConnectionError | RedisTimeoutError):
                raise
            # An error reply (out of memory, a wrong key type): that push failed alone.
            logger.error("webhook task not enqueued; the sweeper will enqueue it again",
                         extra={"event_pk": pending.pop(0), "error": str(err)})
            continue
        pending.pop(0)


def _drop_connection(conn, pending: list[int]) -> None:
    if pending:
        logger.warning("webhook tasks pushed but not confirmed (connection lost); the sweeper "
                       "enqueues any that did not arrive", extra={"event_pks": list(pending)})
        pending.clear()
    conn.disconnect()


def confirm_pushes(**kwargs) -> None:
    """Read the replies of this thread's unconfirmed pushes (request_finished receiver:
    the delivery has been answered by then, and Redis has almost always replied)."""
    pending = getattr(_local, "pending", None)
    held = getattr(_local, "push_connection", None)
    if not pending or held is None or held[0] != os.getpid():
        return
    try:
        _read_pending(held[1], pending)
    except (RedisError, OSError):
        _drop_connection(held[1], pending)
    except BaseException:
        _drop_connection(held[1], pending)  # replies may be half read: never reuse it
        raise


def _push_connection(broker: RedisBroker):
    held = getattr(_local, "push_connection", None)
    if held is None or held[0] != os.getpid():  # a forked child needs its own socket
        held = _local.push_connection = (os.getpid(), broker.connection.connection_pool.make_connection())
        _pending().clear()  # replies owed to the parent's socket are not this process's
    return held[1]


def enqueue_on_commit(*, event_pk: int, request_id: str | None, confirm: bool = True) -> None:
    """Queue it once the current transaction commits, so the worker finds the row.

    Robust: if the broker is down the error is logged and the caller carries on. The
    row is stored as `received`, so the sweeper enqueues it later; the provider gets
    its 200 rather than a 500 that would make it send the event again. The intake
    passes confirm=False (the reply is read once the delivery is answered); the sweeper
    and replays, which run outside a web request, confirm each push.
    """
    transaction.on_commit(lambda: enqueue(event_pk=event_pk, request_id=request_id, confirm=confirm), robust=True)
