"""Provider kinds by name: `get_kind(name)`, `all_kinds()`, and lookups by capability.

Adding a kind is adding its module to this package and its dotted path to KIND_MODULES
(docs/providers.md). `Provider.kind` takes its choices from here at run time, so a new
kind needs no migration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import import_module

from django.core.exceptions import ImproperlyConfigured

from integrations.kinds.base import Kind

# The one place kinds are listed (in the order the admin shows them).
KIND_MODULES = (
    "integrations.kinds.sandbox",
    "integrations.kinds.stripe",
    "integrations.kinds.razorpay",
    "integrations.kinds.sendgrid",
    "integrations.kinds.standard",
    "integrations.kinds.github",
    "integrations.kinds.mailgun",
    "integrations.kinds.nominatim",
)

_kinds: dict[str, Kind] | None = None


def _load() -> dict[str, Kind]:
    # Lazy: kind modules import their adapters and webhook schemes, which need the apps
    # loaded, while integrations.models imports this package to name kind_choices.
    global _kinds
    if _kinds is None:
        kinds: dict[str, Kind] = {}
        for path in KIND_MODULES:
            kind = import_module(path).KIND
            if kind.name in kinds:
                raise ImproperlyConfigured(f"two provider kinds are called {kind.name!r} (see {path})")
            kinds[kind.name] = kind
        _kinds = kinds
    return _kinds


def all_kinds() -> list[Kind]:
    return list(_load().values())


def get_kind(name: str) -> Kind:
    """The kind called `name`; LookupError when there is none."""
    try:
        return _load()[name]
    except KeyError:
        raise LookupError(f"unknown provider kind {name!r}") from None


def kind_choices() -> list[tuple[str, str]]:
    """`Provider.kind`'s choices, read at run time (migrations store this function, not the list)."""
    return [(kind.name, kind.label) for kind in _load().values()]


def kinds_with(capability: str) -> set[str]:
    """Names of the kinds offering `capability`, e.g. the kinds that take payments."""
    return {kind.name for kind in _load().values() if capability in kind.capabilities}


def provider_offering(capability: str, *, slug: str | None, default_slug: str | None, what: str):
    """The provider a request for `capability` goes to (`what` names it in errors, e.g.
    "payment"). Named (or `default_slug`, the app's setting): it must exist, be enabled and
    offer the capability. Neither: the only enabled provider that offers it. Else a 400
    naming `provider`."""
    from rest_framework.exceptions import ValidationError

    from integrations.models import Provider

    kinds = kinds_with(capability)
    slug = slug or default_slug
    if slug:
        provider = Provider.objects.filter(slug=slug).first()
        if provider is None or provider.kind not in kinds:
            raise ValidationError({"provider": [f"Unknown {what} provider {slug!r}."]})
        if not provider.enabled:
            raise ValidationError({"provider": [f"Provider {slug!r} is disabled."]})
        return provider
    candidates = list(Provider.objects.filter(enabled=True, kind__in=kinds)[:2])
    if len(candidates) != 1:
        raise ValidationError({"provider": [f"Name the provider: there is not exactly one enabled {what} provider."]})
    return candidates[0]


def adapter_for(provider, capability: str):
    """The adapter doing `capability` for `provider`; LookupError if its kind has none."""
    return get_kind(provider.kind).adapter(capability, provider)


@contextlib.contextmanager
def registered_kind(kind: Kind) -> Iterator[Kind]:
    """Add `kind` for the duration of a block, as if its module were in KIND_MODULES (tests)."""
    kinds = _load()
    if kind.name in kinds:
        raise ValueError(f"provider kind {kind.name!r} already exists")
    kinds[kind.name] = kind
    try:
        yield kind
    finally:
        kinds.pop(kind.name, None)


__all__ = ["KIND_MODULES", "Kind", "adapter_for", "all_kinds", "get_kind", "kind_choices", "kinds_with",
           "registered_kind"]
