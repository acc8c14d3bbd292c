"""Handlers by (provider kind, event type), and the dataclasses they receive and return.

    @webhook_handler(kinds=("stripe",), types=("charge.succeeded",))
    def on_charge_succeeded(event: Event) -> HandlerResult | None: ...

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
    """What a handler reports back: the charge it touched is linked from the event."""

    charge_id: str | None = None


Handler = Callable[[Event], "HandlerResult | None"]

_handlers: dict[tuple[str, str], Handler] = {}


def webhook_handler(*, kinds: Iterable[str], types: Iterable[str]) -> Callable[[Handler], Handler]:
    """Register the decorated function for every (kind, type) pair; one handler per pair."""

    def register(func: Handler) -> Handler:
        for kind in kinds:
            for type_ in types:
                existing = _handlers.get((kind, type_))
                if existing is not None and existing is not func:
                    raise ImproperlyConfigured(
                        f"two webhook handlers for ({kind!r}, {type_!r}): "
                        f"{existing.__module__}.{existing.__qualname__} and {func.__module__}.{func.__qualname__}"
                    )
                _handlers[(kind, type_)] = func
        return func

    return register


def handler_for(kind: str, type_: str) -> Handler | None:
    """The handler for an event, or None (the event is then `ignored`)."""
    return _handlers.get((kind, type_))


@contextlib.contextmanager
def registered(kind: str, type_: str, func: Handler) -> Iterator[Handler]:
    """Register `func` for one pair for the duration of a block (tests, one-off scripts)."""
    previous = _handlers.get((kind, type_))
    _handlers[(kind, type_)] = func
    try:
        yield func
    finally:
        if previous is None:
            _handlers.pop((kind, type_), None)
        else:
            _handlers[(kind, type_)] = previous
