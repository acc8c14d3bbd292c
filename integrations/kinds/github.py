"""Generic HMAC (GitHub-style)."""

from integrations.kinds.base import Kind

KIND = Kind(name="github", label="Generic HMAC (GitHub-style)", capabilities=frozenset())
