"""Standard Webhooks sender."""

from integrations.kinds.base import Kind

KIND = Kind(name="standard", label="Standard Webhooks sender", capabilities=frozenset())
