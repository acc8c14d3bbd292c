"""Emails, the provider events about them and their status history."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone


def new_email_id() -> str:
    return "em_" + secrets.token_hex(12)


def new_outbound_key() -> str:
    """The provider idempotency key of one send: made with the email, reused on every attempt."""
    return f"pgw_em_{secrets.token_hex(16)}"


class EmailStatus(models.TextChoices):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    COMPLAINED = "complained"
    FAILED = "failed"
    UNKNOWN = "unknown"


# How far along an email is. Status only ever moves to a higher rank, so late or reordered
# events cannot undo progress (a `deferred` after `delivered` changes nothing). `unknown` and
# `failed` rank below `sent`: a provider event about the email proves it was accepted.
STATUS_RANK = {
    EmailStatus.QUEUED: 0,
    EmailStatus.SENDING: 1,
    EmailStatus.UNKNOWN: 2,
    EmailStatus.FAILED: 2,
    EmailStatus.SENT: 3,
    EmailStatus.DEFERRED: 4,
    EmailStatus.DELIVERED: 5,
    EmailStatus.BOUNCED: 5,
    EmailStatus.DROPPED: 5,
    EmailStatus.COMPLAINED: 6,
}


class Email(models.Model):
    """One email. Addresses and bodies are kept only as long as they are needed to send it."""

    id = models.CharField(primary_key=True, max_length=40, default=new_email_id, editable=False)
    consumer = models.ForeignKey("api.Consumer", on_delete=models.PROTECT, related_name="emails")
    provider = models.ForeignKey("integrations.Provider", on_delete=models.PROTECT, related_name="emails")
    status = models.CharField(max_length=20, choices=EmailStatus.choices, default=EmailStatus.QUEUED)
    from_address = models.CharField(max_length=254)
    reply_to = models.CharField(max_length=254, blank=True)
    # {"to": [...], "cc": [...], "bcc": [...]}: cleared with the bodies (see conf.KEEP_BODIES).
    recipients = models.JSONField(default=dict, blank=True)
    recipient_count = models.PositiveSmallIntegerField()
    # Keyed hashes of the addresses (emails.privacy), what the admin and the API show.
    recipient_hashes = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    content_purged_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    # Sent on every attempt of one send: a deduplicating provider sends the message once.
    outbound_idempotency_key = models.CharField(max_length=255, unique=True, editable=False)
    # The consumer's Idempotency-Key of the request that created it: for support, not a lookup.
    request_key = models.CharField(max_length=255, blank=True, editable=False)
    attempts = models.PositiveIntegerField(default=0, help_text="Send attempts (calls to the provider) so far.")
    resends = models.PositiveIntegerField(default=0, help_text="Explicit resends by staff of an unknown email.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=1000, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]
        permissions = [("resend_email", "Can resend an email whose delivery is unknown")]
        indexes = [
            models.Index(fields=["consumer", "-created", "-id"], name="email_consumer_created"),
            models.Index(fields=["consumer", "status", "-created", "-id"], name="email_consumer_status"),
            # The sweeper's query: queued or sending rows by their times.
            models.Index(fields=["status", "next_attempt_at"], name="email_status_next_attempt"),
            models.Index(fields=["provider", "provider_message_id"], name="email_provider_message"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"


class EmailEvent(models.Model):
    """One provider event about an email (and one recipient), kept whatever it did to the status."""

    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=20)
    occurred_at = models.DateTimeField(default=timezone.now)
    recipient_hash = models.CharField(max_length=64, blank=True)
    # The webhook event id (sg_event_id, event-data.id, webhook-id): a replay adds nothing.
    provider_event_id = models.CharField(max_length=255)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["occurred_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["email", "provider_event_id"], name="email_event_once")]

    def __str__(self) -> str:
        return f"{self.email_id}: {self.type}"


class EmailStatusChange(models.Model):
    """History of an email's status and send attempts, for the admin and for debugging."""

    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=20)
    to_status = models.CharField(max_length=20)
    source = models.CharField(max_length=200, help_text="What caused it: api, task, webhook:<event id>, sweeper, "
                                                        "admin resend…")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.email_id}: {self.from_status} -> {self.to_status} ({self.source})"
