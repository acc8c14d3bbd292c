"""The enqueue: the package a worker receives, and the Redis push's connection handling."""

from __future__ import annotations

import inspect

import pytest
from django.conf import settings
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from webhooks import queue
from webhooks.models import WebhookEvent


class CapturingBroker:
    """What async_task hands its broker, kept instead of pushed."""

    list_key = "captured"

    def __init__(self):
        self.packages = []

    def enqueue(self, package):
        self.packages.append(package)


def test_the_package_is_the_one_async_task_builds(db):
    broker = CapturingBroker()
    async_task(queue.TASK, 42, request_id="req-1", broker=broker, task_name=queue._task_name(42))
    theirs = SignedPackage.loads(broker.packages[0])
    ours = SignedPackage.loads(queue._task_package(42, "req-1"))
    different = {"id", "started"}  # new for every task
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in different} == \
        {k: v for k, v in theirs.items() if k not in different}
    assert ours["id"] != theirs["id"] and ours["started"] >= theirs["started"]
    assert ours == {**ours, "func": "webhooks.tasks.process_event", "args": (42,),
                    "kwargs": {"request_id": "req-1"}, "name": "webhook event 42"}


def test_the_pre_enqueue_signal_sees_the_task(db):
    from django_q.signals import pre_enqueue

    seen = []

    def receiver(sender, task, **kwargs):
        seen.append(task)

    pre_enqueue.connect(receiver)
    try:
        queue._task_package(7, None)
    finally:
        pre_enqueue.disconnect(receiver)
    assert [(t["func"], t["args"]) for t in seen] == [(queue.TASK, (7,))]


# --- Redis (the PostgreSQL + Redis stage of `make test`) ----------------------------------

redis_stage = pytest.mark.postgres


def _redis_broker():
    assert settings.REDIS_URL, "the PostgreSQL stage runs with REDIS_URL set"
    broker = queue._broker()
    assert isinstance(broker, queue.RedisBroker)
    return broker


@redis_stage
def test_a_redis_push_reaches_the_queue_as_a_worker_reads_it(task_queue):
    _redis_broker()
    queue.enqueue(event_pk=5, request_id="req-5")
    queue.enqueue(event_pk=6, request_id=None)
    assert [(t["args"], t["kwargs"]) for t in task_queue.take()] == [((5,), {"request_id": "req-5"}),
                                                                     ((6,), {"request_id": None})]


@redis_stage
def test_a_connection_dropped_by_redis_is_replaced_on_the_next_push(task_queue):
    broker = _redis_broker()
    queue.enqueue(event_pk=1, request_id=None)
    conn = queue._push_connection(broker)
    conn.send_command("CLIENT", "ID")
    client_id = conn.read_response()
    # As a Redis restart or an idle timeout would: the server closes this socket.
    assert broker.connection.client_kill_filter(_id=client_id) == 1
    queue.enqueue(event_pk=2, request_id=None)
    assert [t["args"] for t in task_queue.take()] == [(1,), (2,)]


@redis_stage
def test_a_forked_child_does_not_share_the_parents_socket(task_queue, monkeypatch):
    broker = _redis_broker()
    parent = queue._push_connection(broker)
    monkeypatch.setattr(queue.os, "getpid", lambda: -1)
    assert queue._push_connection(broker) is not parent


@redis_stage
def test_an_unreachable_redis_raises_after_one_retry(monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    broker = _redis_broker()
    dead = broker.connection.connection_pool.make_connection()
    dead.port = 9  # discard: nothing listens
    attempts = []
    monkeypatch.setattr(queue, "_push_connection", lambda b: attempts.append(1) or dead)
    with pytest.raises(RedisConnectionError):
        queue.enqueue(event_pk=3, request_id=None)
    assert len(attempts) == 2


@redis_stage
@pytest.mark.django_db(transaction=True)  # autocommit, as in production: on_commit runs at once
def test_the_intake_answers_before_confirming_and_confirms_when_the_request_finishes(
        sender_of, client, task_queue, monkeypatch):
    """The push is written before the answer; its reply is read on request_finished."""
    _redis_broker()
    confirmed_during_view = []
    real_read = queue._read_pending

    def spy(conn, pending):
        finished = any(frame.function == "confirm_pushes" for frame in inspect.stack(context=0))
        confirmed_during_view.append((list(pending), finished))
        return real_read(conn, pending)

    monkeypatch.setattr(queue, "_read_pending", spy)
    sender = sender_of("standard")
    event_id, body = sender.body()
    response = sender.post(client, body, sender.headers(body, event_id))
    assert response.json() == {"received": True, "duplicate": False}
    event_pk = WebhookEvent.objects.get(event_id=event_id).pk
    # Before the push nothing was owed; the reply for this event was read by request_finished.
    assert confirmed_during_view == [([], False), ([event_pk], True)]
    assert queue._pending() == []
    assert [t["args"] for t in task_queue.take()] == [(event_pk,)]


@redis_stage
def test_an_error_reply_is_logged_with_its_event_and_later_pushes_go_through(task_queue, caplog):
    broker = _redis_broker()
    broker.connection.set(broker.list_key, "not a list")  # RPUSH now answers WRONGTYPE
    try:
        queue.enqueue(event_pk=11, request_id=None, confirm=False)
        with caplog.at_level("ERROR", logger="webhooks.queue"):
            queue.confirm_pushes()
    finally:
        broker.connection.delete(broker.list_key)
    [record] = [r for r in caplog.records if r.name == "webhooks.queue"]
    assert record.event_pk == 11 and "WRONGTYPE" in record.error
    queue.enqueue(event_pk=12, request_id=None, confirm=False)
    queue.confirm_pushes()
    assert [t["args"] for t in task_queue.take()] == [(12,)]


@redis_stage
def test_unconfirmed_pushes_on_a_lost_connection_are_named_and_the_next_push_still_arrives(task_queue, caplog):
    broker = _redis_broker()
    queue.enqueue(event_pk=21, request_id=None, confirm=False)
    conn = queue._push_connection(broker)
    conn.disconnect()  # as if the socket broke before the reply was read
    with caplog.at_level("WARNING", logger="webhooks.queue"):
        queue.enqueue(event_pk=22, request_id=None, confirm=False)
        queue.confirm_pushes()
    assert [r.event_pks for r in caplog.records if r.name == "webhooks.queue"] == [[21]]
    # 21 was written before the break (Redis has it); 22 went on a fresh connection.
    assert [t["args"] for t in task_queue.take()] == [(21,), (22,)]
