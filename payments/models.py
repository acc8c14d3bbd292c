"""Charges and refunds."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone


def new_charge_id() -> str:
    return "ch_" + secrets.token_hex(12)


def new_refund_id() -> str:
    return "re_" + secrets.token_hex(12)


def new_outbound_key(prefix: str) -> str:
    """A provider idempotency key, made once per charge or refund and reused on every attempt."""
    return f"pgw_{prefix}_{secrets.token_hex(16)}"


class ChargeStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


# How far along a charge is. State only ever moves to a higher rank (or, at the same
# rank, to a larger refunded amount), so late or reordered events cannot undo progress.
STATUS_RANK = {
    ChargeStatus.PENDING: 0,
    ChargeStatus.FAILED: 1,
    ChargeStatus.SUCCEEDED: 1,
    ChargeStatus.PARTIALLY_REFUNDED: 2,
    ChargeStatus.REFUNDED: 3,
}


class Charge(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_charge_id, editable=False)
    consumer = models.ForeignKey("api.Consumer", on_delete=models.PROTECT, related_name="charges")
    provider = models.ForeignKey("integrations.Provider", on_delete=models.PROTECT, related_name="charges")
    amount = models.PositiveBigIntegerField(help_text="Minor units (cents).")
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=255)
    description = models.CharField(max_length=1000, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=ChargeStatus.choices, default=ChargeStatus.PENDING)
    amount_refunded = models.PositiveBigIntegerField(default=0)
    provider_charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    # Derived once when the charge row is created and sent on every provider attempt,
    # resume and completer run: the provider's own dedupe is what makes retries safe.
    outbound_idempotency_key = models.CharField(max_length=255, unique=True, editable=False)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=1000, blank=True)
    # The consumer's Idempotency-Key of the request that created it: for support, not a lookup.
    request_key = models.CharField(max_length=255, blank=True, editable=False)
    # Runs of the background completer on this charge while it was pending.
    completion_attempts = models.PositiveIntegerField(default=0, editable=False)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["consumer", "-created", "-id"], name="charge_consumer_created"),
            # The completer's query: pending charges not touched for a while.
            models.Index(fields=["status", "updated"], name="charge_status_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.amount} {self.currency} {self.status}"

    @property
    def amount_refundable(self) -> int:
        return self.amount - self.amount_refunded


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=new_refund_id, editable=False)
    charge = models.ForeignKey(Charge, on_delete=models.PROTECT, related_name="refunds")
    amount = models.PositiveBigIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    provider_refund_id = models.CharField(max_length=255, blank=True)
    outbound_idempotency_key = models.CharField(max_length=255, unique=True, editable=False)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=1000, blank=True)
    completion_attempts = models.PositiveIntegerField(default=0, editable=False)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "updated"], name="refund_status_updated")]

    def __str__(self) -> str:
        return f"{self.id} {self.amount} on {self.charge_id}"


class ChargeStatusChange(models.Model):
    """History of a charge's status, for the admin and for debugging event ordering."""

    charge = models.ForeignKey(Charge, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=20)
    to_status = models.CharField(max_length=20)
    amount_refunded = models.PositiveBigIntegerField(default=0)
    source = models.CharField(max_length=100, help_text="What caused it: api, webhook:<event id>, completer…")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.charge_id}: {self.from_status} -> {self.to_status} ({self.source})"
