"""The addresses app's settings (`address_settings.X` is the Django setting ADDRESSES_X) and its limits."""

from __future__ import annotations

from config.app_settings import AppSettings

address_settings = AppSettings("ADDRESSES_", {
    # Nominatim's usage policy asks for an application name and a contact; set yours.
    "USER_AGENT": "provider-gateway/1.0 address-verification (set ADDRESSES_USER_AGENT to name your contact)",
    # The provider slug used when a request names none (None: the only enabled geocoding one).
    "DEFAULT_PROVIDER": None,
    # How long a "not found" answer is kept; a found one is kept the provider's cache_ttl.
    "NOT_FOUND_TTL": 24 * 3600,
    # Single flight: how often requests waiting for another's provider call look for its answer
    # (the call's lock lasts the provider's deadline plus a second).
    "POLL_SECONDS": 0.02,
    # After a failed provider call, requests for the same address fail at once this long (0: off).
    "FAILED_HOLD_SECONDS": 2,
    # A batch worker stores its answers (and progress) after this many lookups, or seconds.
    "BATCH_STORE_EVERY": 20,
    # A batch job whose worker has not reported for this long is re-enqueued by the sweeper.
    "BATCH_STALE_SECONDS": 120,
    # Runs of a batch job that ended with the provider unavailable before it is `failed`.
    "BATCH_MAX_ATTEMPTS": 5,
})

# Limits of the API contract, not settings: clients rely on them being the same everywhere.
MAX_ADDRESS_LENGTH = 500
MAX_BATCH_ADDRESSES = 10_000
RESULTS_PAGE_SIZE = 100
RESULTS_MAX_PAGE_SIZE = 1000
# The seven days the contract names, for a nominatim provider (docs/addresses.md, configure step).
NOMINATIM_CACHE_TTL = 7 * 24 * 3600
