"""Handing stored events to django-q2 workers, through its public `async_task`.

A task carries event ids and request ids only: never a secret or a body (django-q2
pickles arguments into the queue and shows them in its admin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django_q.conf import Conf
from django_q.tasks import async_task

from webhooks.conf import webhook_settings

TASK = "webhooks.tasks.process_events"

Row = tuple[int, str | None]  # (event pk, request id)


def task_batches(rows: Sequence[Row]) -> list[list[Row]]:
    """`rows` cut into tasks: as many as the cluster has workers (so none idles while
    another holds a long batch), of at most WEBHOOK_TASK_BATCH events each."""
    if not rows:
        return []
    size = max(1, min(webhook_settings.TASK_BATCH, math.ceil(len(rows) / max(Conf.WORKERS or 1, 1))))
    return [list(rows[i:i + size]) for i in range(0, len(rows), size)]


def enqueue_events(rows: Sequence[Row], *, broker=None, alone: bool = False) -> int:
    """Queue processing of `rows` (`alone`: each in a task of its own); returns the number
    of tasks. Raises what the broker raises. Called inside the transaction that marks the
    rows enqueued: with the ORM broker the tasks commit with the mark, and with Redis a
    failed push rolls it back."""
    batches = [[row] for row in rows] if alone else task_batches(rows)
    for batch in batches:
        first, last = batch[0][0], batch[-1][0]
        name = f"webhook event {first}" if len(batch) == 1 else f"webhook events {first}..{last}"
        async_task(TASK, [[pk, request_id or None] for pk, request_id in batch], task_name=name, broker=broker)
    return len(batches)
