"""Provider kinds by name: `get_kind(name)`, `all_kinds()`.

Adding a kind is adding its module to this package and its dotted path to KIND_MODULES.
"""

from __future__ import annotations

from importlib import import_module

from integrations.kinds.base import Kind

# The one place kinds are listed.
KIND_MODULES = (
    "integrations.kinds.sandbox",
    "integrations.kinds.stripe",
    "integrations.kinds.razorpay",
    "integrations.kinds.sendgrid",
    "integrations.kinds.standard",
    "integrations.kinds.github",
)

_kinds: dict[str, Kind] | None = None


def _load() -> dict[str, Kind]:
    global _kinds
    if _kinds is None:
        kinds = [import_module(path).KIND for path in KIND_MODULES]
        _kinds = {kind.name: kind for kind in kinds}
    return _kinds


def all_kinds() -> list[Kind]:
    return list(_load().values())


def get_kind(name: str) -> Kind:
    """The kind called `name`; LookupError when there is none."""
    try:
        return _load()[name]
    except KeyError:
        raise LookupError(f"unknown provider kind {name!r}") from None


__all__ = ["KIND_MODULES", "Kind", "all_kinds", "get_kind"]
