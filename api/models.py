"""API consumers and their keys. A key is shown once and stored as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

from django.db import models
from django.utils import timezone

KEY_PREFIX = "pgw_"


def hash_key(raw: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class Consumer(models.Model):
    """A service that calls the API. Idempotency keys and charges belong to the consumer,
    not to one key, so rotating a consumer's key keeps its history and its keys' scope."""

    name = models.CharField(max_length=100, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    # DRF's IsAuthenticated asks the authenticated principal this.
    is_authenticated = True
    is_anonymous = False


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="keys")
    label = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, editable=False,
                              help_text="The first characters of the key, to recognise it.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.consumer})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


def api_key_create(*, consumer_name: str, label: str = "") -> tuple[ApiKey, str]:
    """Create a key (and its consumer when new). Returns the row and the raw key, shown once."""
    consumer, _ = Consumer.objects.get_or_create(name=consumer_name)
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(consumer=consumer, label=label, prefix=raw[:12], digest=hash_key(raw))
    return key, raw
