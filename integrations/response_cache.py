"""Read-through cache for GETs an adapter marks cacheable (in the Django cache, shared).

The key is a digest of the provider's slug, environment and API version, the path and the
normalised request: string values trimmed, case-folded and with runs of whitespace
collapsed, so " 10  Downing St" and "10 downing st" share an entry. Only successful JSON
answers are kept, for `provider.cache_ttl` seconds.
"""

from __future__ import annotations

import hashlib
import json
import re

from django.core.cache import cache

_SPACES = re.compile(r"\s+")


def normalise(value):
    """Strings trimmed, case-folded, whitespace collapsed; containers normalised recursively."""
    if isinstance(value, str):
        return _SPACES.sub(" ", value.strip()).casefold()
    if isinstance(value, dict):
        return {str(normalise(k)): normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    return value


def cache_key(*, provider, path: str, params: dict | None, key_parts) -> str:
    """The cache key of a request. `key_parts` (when given) replaces the params as what
    identifies the answer, e.g. just the address of a verification request."""
    identity = {
        "provider": provider.slug,
        "environment": provider.environment,
        "version": provider.api_version,
        "path": path,
        "request": normalise(key_parts if key_parts is not None else (params or {})),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return f"outbound-cache:{provider.slug}:{digest}"


def cache_get(key: str) -> dict | None:
    return cache.get(key)


def cache_put(key: str, *, status: int, data, headers: dict, ttl: int) -> None:
    cache.set(key, {"status": status, "data": data, "headers": headers}, timeout=ttl)
