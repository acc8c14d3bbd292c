"""One row per (consumer, Idempotency-Key): who holds it, how far the work got, what was answered."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class RecoveryPoint:
    """Well-known recovery points. Endpoints add their own between STARTED and FINISHED."""

    STARTED = "started"  # claimed, nothing durable done yet: safe to forget
    FINISHED = "finished"  # response stored: every later request is a replay


class IdempotencyRecord(models.Model):
    """The stored side of an idempotent POST.

    The unique constraint on (consumer, key) is what makes the claim atomic: the first
    INSERT wins, every other request lands on the existing row. A row whose
    `response_status` is set is immutable; a row without one is either locked by a
    request in progress (`locked_at` recent) or free to be resumed from `recovery_point`.
    """

    consumer = models.ForeignKey("api.Consumer", on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and canonical JSON body.")
    locked_at = models.DateTimeField(null=True, blank=True,
                                     help_text="When the request now executing claimed the key; empty when free.")
    # Only the holder of the current token may move the record on; a takeover issues a new one,
    # so a slow original request cannot overwrite the outcome of the request that resumed it.
    lock_token = models.CharField(max_length=32, blank=True, editable=False)
    recovery_point = models.CharField(max_length=50, default=RecoveryPoint.STARTED)
    resource_id = models.CharField(max_length=64, blank=True,
                                   help_text="What the work created (e.g. the charge id), to resume it.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The rendered JSON answer, replayed as is.")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "key"], name="idempotency_consumer_key_unique"),
        ]
        indexes = [models.Index(fields=["created"], name="idempotency_created")]
        ordering = ["-created"]
        verbose_name = "idempotency record"

    def __str__(self) -> str:
        return f"{self.key} ({self.consumer_id}) {self.method} {self.path}"
