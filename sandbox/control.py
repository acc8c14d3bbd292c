"""`/_control/`: how tests drive the sandbox itself (faults, reset, stats, configuration).

These routes need no API key and suffer no faults: the sandbox is a local test tool.
"""

from __future__ import annotations

import re

from sandbox.capabilities.base import Capability
from sandbox.faults import FaultSpecError
from sandbox.messages import SandboxRequest, SandboxResponse, invalid
from sandbox.params import only, parse_json
from sandbox.routing import Route
from sandbox.webhooks import validate_secret

_STRINGS = ("webhook_url", "webhook_secret", "api_key")
_BACKOFFS = ("webhook_backoff_base", "webhook_backoff_max")


class Control(Capability):
    """The control endpoints, routed like any capability."""

    def routes(self) -> list[Route]:
        return [
            *(Route(method, "/_control/faults", self.faults) for method in ("GET", "POST", "DELETE")),
            Route("POST", "/_control/reset", self.reset_all),
            Route("GET", "/_control/stats", self.stats_all),
            Route("GET", "/_control/config", self.config),
            Route("POST", "/_control/config", self.config),
            Route("GET", "/_control/health", self.health),
        ]

    def faults(self, request: SandboxRequest) -> SandboxResponse:
        """GET: the plan; POST: replace it (append with ?append=1); DELETE: clear it."""
        plan = self.sandbox.faults
        if request.method == "POST":
            try:
                plan.configure(parse_json(request.body), replace=request.query.get("append") not in {"1", "true"})
            except FaultSpecError as err:
                raise invalid(str(err)) from err
        elif request.method == "DELETE":
            plan.clear()
        return SandboxResponse(200, plan.describe())

    def reset_all(self, request: SandboxRequest) -> SandboxResponse:
        self.sandbox.reset()
        return SandboxResponse(200, {"reset": True})

    def stats_all(self, request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse(200, self.sandbox.stats())

    def config(self, request: SandboxRequest) -> SandboxResponse:
        """GET: the webhook settings (secrets masked); POST: change some of them at once."""
        if request.method == "POST":
            self._configure(parse_json(request.body))
        hooks = self.sandbox.config.webhooks
        return SandboxResponse(200, {
            "webhook_url": hooks.url,
            "webhook_secret_set": bool(hooks.secret),
            "webhook_max_attempts": hooks.max_attempts,
            "webhook_backoff_base": hooks.backoff_base,
            "webhook_backoff_max": hooks.backoff_max,
        })

    def health(self, request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse(200, {"status": "ok"})

    def _configure(self, data: object) -> None:
        """Check every change first, then apply them all: a bad field changes nothing."""
        if not isinstance(data, dict):
            raise invalid("the body must be a JSON object")
        only(data, {*_STRINGS, "webhook_max_attempts", *_BACKOFFS})
        for name in _STRINGS:
            if name in data and not isinstance(data[name], str):
                raise invalid(f"{name} must be a string.", param=name)
        if data.get("webhook_url") and not re.match(r"^https?://", data["webhook_url"]):
            raise invalid("webhook_url must be an http(s) URL or empty.", param="webhook_url")
        if data.get("webhook_secret"):
            try:
                validate_secret(data["webhook_secret"])
            except ValueError as err:
                raise invalid(str(err), param="webhook_secret") from err
        if "api_key" in data and not data["api_key"]:
            raise invalid("api_key must not be empty.", param="api_key")
        if "webhook_max_attempts" in data:
            value = data["webhook_max_attempts"]
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
                raise invalid("webhook_max_attempts must be an integer from 1 to 100.")
        for name in _BACKOFFS:
            value = data.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
                raise invalid(f"{name} must be seconds between 0 and 3600.", param=name)

        hooks = self.sandbox.config.webhooks
        for name in ("webhook_url", "webhook_secret", "webhook_max_attempts", *_BACKOFFS):
            if name in data:
                value = float(data[name]) if name in _BACKOFFS else data[name]
                setattr(hooks, name.removeprefix("webhook_"), value)
        if "api_key" in data:
            self.sandbox.config.api_key = data["api_key"]
