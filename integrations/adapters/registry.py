"""Payment adapters by provider kind."""

from __future__ import annotations

from integrations.adapters.base import PaymentAdapter

_adapters: dict[str, type[PaymentAdapter]] = {}


def register(kind: str):
    """Class decorator: make `cls` the adapter of providers of this kind."""

    def decorate(cls: type[PaymentAdapter]) -> type[PaymentAdapter]:
        cls.kind = kind
        _adapters[kind] = cls
        return cls

    return decorate


def payment_kinds() -> set[str]:
    """Provider kinds that can take payments."""
    _load()
    return set(_adapters)


def adapter_for(provider) -> PaymentAdapter:
    """The payment adapter for `provider`; LookupError if its kind takes no payments."""
    _load()
    try:
        return _adapters[provider.kind](provider)
    except KeyError:
        raise LookupError(f"provider {provider.slug!r} of kind {provider.kind!r} takes no payments") from None


def _load() -> None:
    # Importing the modules registers them; kept here so callers import one name.
    from integrations.adapters import sandbox, stripe  # noqa: F401
