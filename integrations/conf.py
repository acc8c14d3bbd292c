"""The integrations core's settings: `integration_settings.X` is the Django setting INTEGRATIONS_X."""

from __future__ import annotations

from config.app_settings import AppSettings

integration_settings = AppSettings("INTEGRATIONS_", {
    # A Retry-After longer than this is never slept; a shorter deadline ends the call sooner.
    "RETRY_AFTER_MAX": 60.0,
    # A client re-reads its provider row (policy and credentials) when its copy is older.
    "POLICY_REFRESH_SECONDS": 2.0,
    # Answers larger than this end the attempt with EBADRESPONSE instead of filling memory.
    "MAX_RESPONSE_BYTES": 10 * 1024 * 1024,
    # OutboundCall rows older than this are purged by the scheduled task.
    "OUTBOUND_CALL_RETENTION_DAYS": 14,
    # OutboundCall rows: True/"sync" (insert during the call), "batch" (a background thread
    # inserts them every second: no commit on the call's path), False (none).
    "RECORD_CALLS": True,
    # "redis", "database", or None to follow the default cache backend.
    "SHARED_STATE": None,
    # An OAuth2 access token is refreshed when it has fewer seconds than this left.
    "OAUTH_REFRESH_MARGIN": 60.0,
    # /health/ready answers 503 when every enabled provider's circuit is open (see docs).
    "NOT_READY_WHEN_ALL_CIRCUITS_OPEN": True,
})
