"""The emails app's settings (`email_settings.X` is the Django setting EMAIL_X) and its limits.

The names avoid Django's own EMAIL_* settings (EMAIL_BACKEND, EMAIL_HOST, ...), which are
about Django's SMTP mail and unrelated to this app.
"""

from __future__ import annotations

from datetime import timedelta

from config.app_settings import AppSettings

email_settings = AppSettings("EMAIL_", {
    # The provider slug used when a request names none (None: the only enabled email provider).
    "DEFAULT_PROVIDER": None,
    # How long an email may wait for its provider (outages, missing credential) before it is
    # `failed`: seconds, or a timedelta.
    "SEND_DEADLINE": 24 * 60 * 60,
    # Keep bodies and recipient addresses once the provider accepted (or refused) the message.
    "KEEP_BODIES": False,
    # Backoff between send attempts after "not now": base * 2^(attempt-1), capped.
    "RETRY_BASE_SECONDS": 30,
    "RETRY_MAX_SECONDS": 30 * 60,
    # A queued email whose task has not run this long after being enqueued is enqueued again
    # (a task lost with a Redis worker); a `sending` one this long is a worker that died.
    # Longer than the task timeout (Q_CLUSTER timeout 60 s), so a live send is never taken.
    "STALE_QUEUED_SECONDS": 120,
    "STALE_SENDING_SECONDS": 300,
    # The sweeper takes at most this many rows of each kind per run.
    "SWEEP_BATCH_SIZE": 500,
})


def send_deadline() -> timedelta:
    value = email_settings.SEND_DEADLINE
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


# Limits of the API contract, not settings: clients rely on them being the same everywhere.
MAX_RECIPIENTS = 50
MAX_SUBJECT_LENGTH = 998  # RFC 5322's line limit
MAX_BODY_LENGTH = 1_000_000  # characters, each of text and html
