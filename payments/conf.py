"""The payments app's settings (`payment_settings.X` is the Django setting PAYMENTS_X) and its limits."""

from __future__ import annotations

from config.app_settings import AppSettings

payment_settings = AppSettings("PAYMENTS_", {
    # The largest charge, in minor units (Stripe's own limit is 8 digits).
    "MAX_AMOUNT": 99_999_999,
    # The provider slug used when a request names none (None: the only enabled one).
    "DEFAULT_PROVIDER": None,
    # A pending charge or refund untouched this long is the completer's; longer than a
    # request's lock, so it never races one.
    "COMPLETER_STALE_SECONDS": 120,
    # The completer takes at most this many charges, and as many refunds, per run.
    "COMPLETER_BATCH_SIZE": 100,
})

# Limits of the API contract, not settings: clients rely on them being the same everywhere.
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500
