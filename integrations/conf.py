"""Defaults of the integrations core; each can be set in settings (or override_settings in tests)."""

from __future__ import annotations

from django.conf import settings

DEFAULTS: dict[str, object] = {
    # A Retry-After longer than this is never slept; a shorter deadline ends the call sooner.
    "INTEGRATIONS_RETRY_AFTER_MAX": 60.0,
    # A client re-reads its provider row (policy and credentials) when its copy is older.
    "INTEGRATIONS_POLICY_REFRESH_SECONDS": 2.0,
    # Answers larger than this end the attempt with EBADRESPONSE instead of filling memory.
    "INTEGRATIONS_MAX_RESPONSE_BYTES": 10 * 1024 * 1024,
    # OutboundCall rows older than this are purged by the scheduled task.
    "INTEGRATIONS_OUTBOUND_CALL_RETENTION_DAYS": 14,
    # OutboundCall rows: True/"sync" (insert during the call), "batch" (a background thread
    # inserts them every second: no commit on the call's path), False (none).
    "INTEGRATIONS_RECORD_CALLS": True,
    # "redis", "database", or None to follow the default cache backend.
    "INTEGRATIONS_SHARED_STATE": None,
    # An OAuth2 access token is refreshed when it has fewer seconds than this left.
    "INTEGRATIONS_OAUTH_REFRESH_MARGIN": 60.0,
    # /health/ready answers 503 when every enabled provider's circuit is open (see docs).
    "INTEGRATIONS_NOT_READY_WHEN_ALL_CIRCUITS_OPEN": True,
}


def setting(name: str):
    """The project setting `name`, or this app's default for it."""
    return getattr(settings, name, DEFAULTS[name])
