"""What a provider kind is: everything the service knows about one family of providers.

A kind module (one per kind, in this package) builds one `Kind` and names it `KIND`.
Blank declarations mean "the generic default" (integrations.auth owns those), the same
convention as the blank `Provider.auth_scheme`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # webhooks imports Django apps; kind modules import their scheme themselves
    from webhooks.schemes.base import Scheme


# eq=False: a kind is a singleton compared by identity, and `adapters` (a dict) is unhashable.
@dataclass(frozen=True, eq=False)
class Kind:
    """A provider kind.

    `adapters` maps a capability ("payments" today; "email", "geocoding", "records" next)
    to the class that does it for providers of this kind. `capabilities` are the adapters'
    capabilities plus any declared here: a kind whose events are handled by a domain app
    without an outbound adapter (webhooks only) declares that capability itself. Webhook
    handlers are looked up by capability, adapters by `adapter(capability, provider)`.
    """

    name: str  # stored in Provider.kind (max 20 characters)
    label: str  # shown in the admin
    auth_scheme: str = ""  # an AuthScheme value used when the provider leaves it blank
    api_version_header: str = ""  # carries Provider.api_version (blank: X-API-Version)
    hmac_headers: tuple[str, str] | None = None  # (signature, timestamp) for HMAC request signing
    webhook_scheme: Scheme | None = None  # verifies and parses its webhooks; None: it sends none
    adapters: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()
    # Provider fields a new provider of this kind starts with instead of the model's generic
    # defaults (a usage policy's rate limit, a cache TTL), applied by `apply_provider_defaults`.
    provider_defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        # Frozen, and kinds are shared by every thread: written once, here, read-only after.
        object.__setattr__(self, "adapters", MappingProxyType(dict(self.adapters)))
        object.__setattr__(self, "provider_defaults", MappingProxyType(dict(self.provider_defaults)))
        object.__setattr__(self, "capabilities", frozenset(self.capabilities) | frozenset(self.adapters))

    def adapter(self, capability: str, provider):
        """The adapter doing `capability` for `provider`; LookupError when this kind has none."""
        try:
            adapter_class = self.adapters[capability]
        except KeyError:
            offered = ", ".join(sorted(self.adapters)) or "nothing"
            raise LookupError(f"provider {getattr(provider, 'slug', provider)!r} of kind {self.name!r} "
                              f"has no {capability!r} adapter (it offers: {offered})") from None
        return adapter_class(provider)

    def apply_provider_defaults(self, provider) -> list[str]:
        """Give a new `provider` this kind's defaults for every field still at the model's
        generic default (so a value someone chose is kept); returns the fields changed."""
        changed = []
        for name, value in self.provider_defaults.items():
            if getattr(provider, name) == provider._meta.get_field(name).get_default():
                setattr(provider, name, value)
                changed.append(name)
        return changed
