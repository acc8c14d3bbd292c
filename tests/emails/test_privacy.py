"""No address or body in logs, metrics or task arguments, whatever happens to the email."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY, generate_latest

from emails import services
from emails.models import Email
from integrations.adapters.email import SendResult
from tests.webhooks.factories import stored_event
from webhooks.processing import webhook_process

from .conftest import run_tasks, unavailable
from .test_sending import ambiguous

pytestmark = pytest.mark.django_db

SECRETS = ("grace.hopper@navy.example", "cc.person@example.org", "hidden.bcc@example.net", "reply.here@example.com",
           "from.me@shop.example", "Top secret launch plan", "<b>html secret</b>")
EMAIL = {"to": [SECRETS[0]], "cc": SECRETS[1], "bcc": [SECRETS[2]], "reply_to": SECRETS[3], "from": SECRETS[4],
         "subject": "Hello", "text": SECRETS[5], "html": SECRETS[6]}


def test_logs_metrics_and_task_arguments_never_carry_an_address_or_a_body(post_email, tasks, outbox, caplog,
                                                                          mail_provider, capsys):
    caplog.set_level(logging.DEBUG)
    outbox.script = [unavailable(), SendResult(status="sent", provider_message_id="m1"), ambiguous(),
                     SendResult(status="failed", failure_code="invalid_recipient",
                                failure_message="refused")]
    queued_args = []
    ids = []
    for _ in range(3):
        ids.append(post_email(EMAIL).json()["id"])
        queued_args.extend(tasks)
        run_tasks(tasks)
    services.email_send(email_id=ids[0], now=timezone.now() + timedelta(minutes=5))
    services.emails_sweep(now=timezone.now() + timedelta(hours=1))
    for type_ in ("email.delivered", "email.opened"):
        webhook_process(event_pk=stored_event(provider=mail_provider, type_=type_, payload={
            "event": type_.split(".")[1], "email_id": ids[0], "recipient": SECRETS[0]}).pk)

    assert {e.status for e in Email.objects.all()} >= {"delivered", "unknown"}
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    captured = capsys.readouterr()  # the JSON log lines as the handlers wrote them
    text += captured.out + captured.err
    text += generate_latest(REGISTRY).decode()
    text += repr(queued_args)
    assert caplog.records and queued_args
    leaked = [secret for secret in SECRETS if secret.lower() in text.lower()]
    assert leaked == []
    assert all(isinstance(arg, str | None) and not (arg or "").count("@") for _, args, _ in queued_args
               for arg in args)
