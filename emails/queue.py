"""Handing emails to django-q2 workers. A task carries the email id and the request id only:
never an address or a body (django-q2 pickles arguments into the queue and shows them in its admin)."""

from __future__ import annotations

from django_q.tasks import async_task

SEND_TASK = "emails.tasks.send"


def enqueue_send(email_id: str, request_id: str | None = None) -> None:
    """Queue one send attempt. Harmless when queued twice: the task claims the row first."""
    async_task(SEND_TASK, email_id, request_id, task_name=f"email {email_id}")
