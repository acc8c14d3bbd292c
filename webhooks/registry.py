"""Handlers by (capability, event type), and the dataclasses they receive and return.

    @webhook_handler(capability="payments", types=("charge.succeeded",))
    def on_charge_succeeded(event: Event) -> HandlerResult | None: ...

An event of a provider whose kind has the capability (`integrations.kinds`) goes to that
handler, so a new payments kind needs no handler change. Each domain app registers its
own handlers when it is ready (payments: `payments/handlers.py`).

A handler must be idempotent (it may run again after a crash, a retry or a replay) and
raise to fail the attempt (`HandlerRetry` for "not yet"); it runs in the same database
transaction that marks the event processed, so its writes and that mark commit together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from integrations.kinds import get_kind


@dataclass(frozen=True)
class Event:
    """A stored event as handlers see it."""

    pk: int
    provider_id: int
    provider_slug: str
    kind: str
    event_id: str
    type: str
    payload: Any


@dataclass(frozen=True)
class HandlerResult:
    """What a handler reports back: the row it touched, by model label ("payments.charge")
    and primary key, linked from the event."""

    subject_type: str = ""
    subject_id: str = ""


Handler = Callable[[Event], "HandlerResult | None"]

_handlers: dict[tuple[str, str], Handler] = {}


def webhook_handler(*, capability: str, types: Iterable[str]) -> Callable[[Handler], Handler]:
    """Register the decorated function for every (capability, type) pair; one handler per pair."""

    def register(func: Handler) -> Handler:
        for type_ in types:
            existing = _handlers.get((capability, type_))
            if existing is not None and existing is not func:
                raise ImproperlyConfigured(
                    f"two webhook handlers for ({capability!r}, {type_!r}): "
                    f"{existing.__module__}.{existing.__qualname__} and {func.__module__}.{func.__qualname__}"
                )
            _handlers[(capability, type_)] = func
        return func

    return register


def handler_for(kind: str, type_: str) -> Handler | None:
    """The handler for an event of a provider of `kind`, or None (the event is then
    `ignored`). Capabilities are tried in name order, so the choice is stable."""
    try:
        capabilities = get_kind(kind).capabilities
    except LookupError:
        return None
    for capability in sorted(capabilities):
        handler = _handlers.get((capability, type_))
        if handler is not None:
            return handler
    return None


@contextlib.contextmanager
def registered(capability: str, type_: str, func: Handler) -> Iterator[Handler]:
    """Register `func` for one pair for the duration of a block (tests, one-off scripts)."""
    previous = _handlers.get((capability, type_))
    _handlers[(capability, type_)] = func
    try:
        yield func
    finally:
        if previous is None:
            _handlers.pop((capability, type_), None)
        else:
            _handlers[(capability, type_)] = previous
