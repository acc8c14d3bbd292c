"""The route table: (method, path pattern) -> handler, and the 404 / 405 answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sandbox.messages import ApiError, SandboxResponse

# Requests under this prefix drive the sandbox itself: no API key, no faults, no idempotency.
CONTROL_PREFIX = "/_control/"

Handler = Callable[..., SandboxResponse]


@dataclass(frozen=True)
class Route:
    """`GET /v1/charges/{id}` -> handler(request, "<id>"): each `{name}` matches one path
    segment and reaches the handler as a positional argument, in order.

    The pattern is also the route's name in `/_control/stats`.
    """

    method: str
    path: str
    handler: Handler
    regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        pattern = re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(self.path))
        object.__setattr__(self, "regex", re.compile(pattern))

    @property
    def is_control(self) -> bool:
        return self.path.startswith(CONTROL_PREFIX)


@dataclass(frozen=True)
class Match:
    """What a request resolved to; `error` (404 or 405) when no handler takes it."""

    name: str  # the route's pattern, "unknown" when no path matched: the key of request stats
    route: Route | None = None
    args: tuple[str, ...] = ()
    error: ApiError | None = None


class Router:
    """Every route of every capability; a path and method belong to one handler only."""

    def __init__(self, routes: Iterable[Route] = ()):
        self._routes: list[Route] = []
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        if any((r.method, r.path) == (route.method, route.path) for r in self._routes):
            raise ValueError(f"two handlers for {route.method} {route.path}")
        self._routes.append(route)

    def __iter__(self):
        return iter(self._routes)

    def resolve(self, method: str, path: str) -> Match:
        name = None
        for route in self._routes:
            match = route.regex.fullmatch(path)
            if match:
                if route.method == method:
                    return Match(route.path, route, match.groups())
                name = name or route.path
        if name:
            return Match(name, error=ApiError(405, "invalid_request_error",
                                              f"{method} is not allowed on {name}"))
        return Match("unknown", error=ApiError(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})."))
