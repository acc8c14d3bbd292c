"""Signature schemes: the base class and shared steps here, one module per scheme. Each
provider kind names its scheme (integrations/kinds/); `scheme_for(kind)` reads it."""

from __future__ import annotations

from integrations.kinds import get_kind
from webhooks.schemes.base import Headers, ParsedEvent, Scheme


def scheme_for(kind: str) -> Scheme | None:
    """The scheme that verifies webhooks of providers of `kind` (its kind module names it);
    None for an unknown kind or one that sends no webhooks."""
    try:
        return get_kind(kind).webhook_scheme
    except LookupError:
        return None


__all__ = ["Headers", "ParsedEvent", "Scheme", "scheme_for"]
