"""WebhookEvent: one verified event as received, and where its processing stands.

The row, not the queue, is the source of truth: the sweeper re-enqueues whatever a lost
task left behind, and every attempt's outcome is recorded here.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils import timezone


class EventStatus(models.TextChoices):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    IGNORED = "ignored"  # verified, but no handler for its (kind, type)
    FAILED = "failed"  # an attempt failed; retried at next_attempt_at
    DEAD = "dead"  # out of attempts: waits for a replay


FINAL_STATUSES = (EventStatus.PROCESSED, EventStatus.IGNORED)


class WebhookEvent(models.Model):
    # No index of its own: the unique (provider, event_id) index serves provider lookups.
    provider = models.ForeignKey("integrations.Provider", on_delete=models.PROTECT,
                                 related_name="webhook_events", db_index=False)
    event_id = models.CharField(max_length=255, help_text="The provider's id for the event.")
    type = models.CharField(max_length=255)
    # Exactly the bytes that were verified (for SendGrid: the whole batch delivery).
    raw_body = models.BinaryField(editable=False)
    # This event's JSON (for SendGrid: its own item of the batch); null once purged.
    payload = models.JSONField(null=True, editable=False)
    headers = models.JSONField(default=dict, editable=False,
                               help_text="Selected headers; signatures redacted.")
    request_id = models.CharField(max_length=128, blank=True, editable=False)
    received_at = models.DateTimeField(default=timezone.now)
    # NULL: stored (or replayed) but not yet handed to the task queue, which the relay
    # does next. Else the last time a task was queued: the sweeper's clock for lost tasks.
    enqueued_at = models.DateTimeField(null=True, blank=True)

    # The database defaults (db_default) serve web processes of the previous release, whose
    # INSERT names only the columns it sets, while a deploy replaces them; drop them later.
    status = models.CharField(max_length=20, choices=EventStatus.choices, default=EventStatus.RECEIVED,
                              db_default=EventStatus.RECEIVED)
    attempts = models.PositiveIntegerField(default=0, db_default=0,
                                           help_text="Processing attempts since receipt or the last replay.")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When the current/last attempt started.")
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When a failed event is retried.")
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="", db_default="")
    last_traceback = models.TextField(blank=True, default="", db_default="")
    # What the handler touched, named by its model label ("payments.charge") and primary
    # key: any app's rows, with no foreign key from this app to theirs.
    subject_type = models.CharField(max_length=100, blank=True, default="",
                                    help_text='Model label of what the event updated, e.g. "payments.charge".')
    subject_id = models.CharField(max_length=255, blank=True, default="", help_text="Its primary key.")

    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+", db_index=False)
    replay_count = models.PositiveIntegerField(default=0, db_default=0)
    body_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            # What makes a duplicate delivery a no-op, even when both arrive at once.
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhookevent_provider_event_unique"),
        ]
        # Every index costs each delivery's INSERT an entry, so only what queries need: the
        # admin's filters and lists (type; status, newest first), and partial indexes that
        # hold only the rows a query looks for (the relay's, the sweeper's and retention's
        # states, set subjects).
        # (Plain db_index=True on a CharField would add a second, LIKE-pattern index.)
        indexes = [
            models.Index(fields=["type"], name="webhookevent_type"),
            models.Index(fields=["subject_type", "subject_id"], name="webhookevent_subject",
                         condition=~models.Q(subject_id="")),
            models.Index(fields=["replayed_by"], name="webhookevent_replayed_by",
                         condition=models.Q(replayed_by__isnull=False)),
            models.Index(fields=["next_attempt_at"], name="webhookevent_failed_due",
                         condition=models.Q(status="failed")),
            # The relay's queue: what it has not handed on yet, oldest first.
            models.Index(fields=["id"], name="webhookevent_unrelayed",
                         condition=models.Q(status="received", enqueued_at__isnull=True)),
            models.Index(fields=["enqueued_at"], name="webhookevent_received_since",
                         condition=models.Q(status="received")),
            models.Index(fields=["claimed_at"], name="webhookevent_processing_since",
                         condition=models.Q(status="processing")),
            models.Index(fields=["processed_at"], name="webhookevent_unpurged_done",
                         condition=models.Q(status__in=["processed", "ignored"], body_purged_at__isnull=True)),
            models.Index(fields=["status", "-received_at"], name="webhookevent_status_recent"),
        ]
        permissions = [("replay_webhookevent", "Can replay webhook events")]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.type}, {self.status})"

    def subject_admin_url(self) -> str | None:
        """The admin change page of what the event touched, or None (no subject, or its
        model has no admin page)."""
        if not (self.subject_type and self.subject_id):
            return None
        app_label, _, model_name = self.subject_type.partition(".")
        try:
            return reverse(f"admin:{app_label}_{model_name}_change", args=[self.subject_id])
        except NoReverseMatch:
            return None

    def body_text(self) -> str:
        """The raw body for people: indented JSON when it parses, else the text as is."""
        raw = bytes(self.raw_body or b"")
        try:
            return json.dumps(json.loads(raw), indent=2, sort_keys=True, ensure_ascii=False)
        except ValueError:
            return raw.decode("utf-8", errors="replace")
