"""Settings of the payments app, with defaults; override_settings works in tests."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def max_amount() -> int:
    """The largest charge, in minor units (PAYMENTS_MAX_AMOUNT; Stripe's own limit is 8 digits)."""
    return int(getattr(settings, "PAYMENTS_MAX_AMOUNT", 99_999_999))


def default_provider_slug() -> str | None:
    """PAYMENTS_DEFAULT_PROVIDER: the slug used when a request names no provider."""
    return getattr(settings, "PAYMENTS_DEFAULT_PROVIDER", None)


def completer_stale_after() -> timedelta:
    """A pending charge or refund untouched this long is the completer's
    (PAYMENTS_COMPLETER_STALE_SECONDS); longer than a request's lock, so it never races one."""
    return timedelta(seconds=getattr(settings, "PAYMENTS_COMPLETER_STALE_SECONDS", 120))


def completer_batch_size() -> int:
    return int(getattr(settings, "PAYMENTS_COMPLETER_BATCH_SIZE", 100))


METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500
