"""What a capability implements: its routes and, when it keeps state, reset and stats."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.routing import Route

if TYPE_CHECKING:
    from sandbox.api import Sandbox


class Capability:
    """One thing the sandbox can do (payments, records, ...), served by the core.

    The core authenticates `/v1/` requests, applies faults and, for a POST, parses the
    body and runs it under its Idempotency-Key; a handler receives
    `(request, *path_args)` for a GET and `(request, *path_args, data=, idempotency_key=)`
    for a POST, and answers a `SandboxResponse` or raises an `ApiError`.

    From the core a capability uses `sandbox.lock` (one lock for all state, as the server
    is threaded), `sandbox.clock()`, `sandbox.sleep()` and `sandbox.emit()` (webhooks).
    """

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.reset()

    def routes(self) -> list[Route]:
        """The route table: `Route(method, path pattern, handler)` for each endpoint."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget all state (`POST /_control/reset`). Called with `sandbox.lock` held."""

    def stats(self) -> dict:
        """Entries for `GET /_control/stats`. Called with `sandbox.lock` held."""
        return {}
