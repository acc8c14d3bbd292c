"""The core and its capabilities: every registered route is reachable, unknown ones are the
same 404 as ever, and a new capability is one class listed in one place."""

from __future__ import annotations

import json
import re

import pytest
import requests

from sandbox.api import Sandbox, SandboxConfig
from sandbox.capabilities import CAPABILITIES
from sandbox.capabilities.base import Capability
from sandbox.messages import SandboxRequest, SandboxResponse
from sandbox.routing import Route
from tests.sandbox.conftest import API_KEY

# The sandbox's whole URL surface: a route lost (or added) while refactoring shows up here.
ROUTES = {
    "POST /v1/charges", "GET /v1/charges/{id}", "POST /v1/refunds", "GET /v1/refunds/{id}",
    "GET /v1/records", "POST /v3/mail/send", "GET /search",
    "GET /_control/faults", "POST /_control/faults", "DELETE /_control/faults",
    "POST /_control/reset", "GET /_control/stats", "GET /_control/config",
    "POST /_control/config", "GET /_control/health", "GET /_control/records", "POST /_control/records",
}


def test_the_route_table_is_the_documented_url_surface(sandbox):
    assert {f"{route.method} {route.path}" for route in sandbox.sandbox.router} == ROUTES


def test_every_capability_route_reaches_its_handler_over_http(client, sandbox):
    for route in sandbox.sandbox.router:
        path = re.sub(r"\{\w+\}", "missing", route.path)
        response = client.session.request(route.method, client.base_url + path, timeout=5,
                                          **({"json": {}} if route.method == "POST" else {}))
        message = response.json().get("error", {}).get("message", "")
        assert response.status_code != 405, (route, message)
        assert not message.startswith("Unrecognized request URL"), (route, message)
        assert response.headers["Request-Id"].startswith("req_")


def test_an_unknown_path_is_the_same_404_as_before_the_split(client, sandbox):
    anonymous = requests.Session()  # no API key
    for method, path, session in [("GET", "/v1/nothing", client.session),
                                  ("POST", "/v2/charges", anonymous),
                                  ("GET", "/_control/nothing", anonymous)]:
        response = session.request(method, sandbox.url + path, timeout=5)
        assert response.status_code == 404  # not 401: the key is checked only on known routes
        assert response.json() == {"error": {
            "type": "invalid_request_error", "message": f"Unrecognized request URL ({method}: {path})."}}
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Request-Id"].startswith("req_")
    assert client.stats()["requests"]["GET unknown"] == {"404": 2}


class Echo(Capability):
    """A throwaway capability, as a new module would define it."""

    def routes(self) -> list[Route]:
        return [Route("POST", "/v1/echo/{name}", self.echo), Route("GET", "/v1/echo/count", self.count)]

    def reset(self) -> None:
        self.calls = 0

    def stats(self) -> dict:
        return {"echo": {"calls": self.calls}}

    def echo(self, request: SandboxRequest, name: str, *, data: dict,
             idempotency_key: str | None) -> SandboxResponse:
        with self.sandbox.lock:
            self.calls += 1
        return SandboxResponse(200, {"name": name, "data": data})

    def count(self, request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse(200, {"calls": self.calls})


def _call(sandbox: Sandbox, method: str, path: str, body: dict | None = None, **headers) -> SandboxResponse:
    headers = {"authorization": f"Bearer {API_KEY}", **headers}
    return sandbox.handle(SandboxRequest(method, path, headers=headers,
                                         body=json.dumps(body).encode() if body is not None else b""))


def test_a_new_capability_gets_auth_idempotency_faults_reset_and_stats_from_the_core():
    sandbox = Sandbox(SandboxConfig(api_key=API_KEY), capabilities=(*CAPABILITIES, Echo))
    first = _call(sandbox, "POST", "/v1/echo/ada", {"x": 1}, **{"idempotency-key": "e-1"})
    again = _call(sandbox, "POST", "/v1/echo/ada", {"x": 1}, **{"idempotency-key": "e-1"})
    assert first.body == again.body == {"name": "ada", "data": {"x": 1}}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _call(sandbox, "GET", "/v1/echo/count", **{"x-sandbox-fault": "status=503"}).status == 503
    assert _call(sandbox, "GET", "/v1/echo/count", authorization="Bearer wrong").status == 401
    assert _call(sandbox, "POST", "/v1/charges", {"amount": 1, "currency": "usd",
                                                  "source": "tok_visa"}).status == 200
    stats = sandbox.stats()
    assert stats["echo"] == {"calls": 1} and stats["charges"]["total"] == 1
    assert stats["requests"]["POST /v1/echo/{name}"] == {"200": 2}
    sandbox.reset()
    assert sandbox.stats()["echo"] == {"calls": 0}


def test_two_capabilities_cannot_claim_the_same_route():
    class Clash(Echo):
        def routes(self) -> list[Route]:
            return [Route("POST", "/v1/charges", self.echo)]

    with pytest.raises(ValueError, match="two handlers for POST /v1/charges"):
        Sandbox(SandboxConfig(), capabilities=(*CAPABILITIES, Clash))
