"""The sandbox's core: routing, authentication, fault injection, idempotency, webhooks out.

`Sandbox.handle(SandboxRequest) -> SandboxResponse` is everything the provider does;
sandbox/server.py only moves bytes, and each capability (sandbox/capabilities/) only
implements its endpoints. State lives in memory and is lost on restart (or on
`POST /_control/reset`): the sandbox is a test double, not a ledger.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sandbox.capabilities import CAPABILITIES, Capability
from sandbox.control import Control
from sandbox.faults import Fault, FaultPlan, FaultSpecError, parse_fault_header
from sandbox.idempotency import IdempotencyStore
from sandbox.messages import ApiError, SandboxRequest, SandboxResponse, invalid, new_id
from sandbox.params import parse_body
from sandbox.routing import Route, Router
from sandbox.webhooks import WebhookSender, WebhookSettings

__all__ = ["ApiError", "Sandbox", "SandboxConfig", "SandboxRequest", "SandboxResponse"]


@dataclass
class SandboxConfig:
    """How the sandbox runs; the command builds it from options and environment."""

    api_key: str = "sk_test_sandbox"
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)


class Sandbox:
    """The provider: every capability's routes behind one key, one fault plan, one
    Idempotency-Key store and one webhook sender."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        capabilities: Sequence[type[Capability]] = CAPABILITIES,
    ):
        self.config = config
        self.sleep = sleep
        self.clock = clock
        # One lock for all in-memory state, capabilities' included; it is held only for
        # dictionary work, never while sleeping, sending or waiting for another key.
        self.lock = threading.Lock()
        self.faults = FaultPlan(clock=monotonic)
        self.webhooks = WebhookSender(lambda: self.config.webhooks, clock=monotonic, wall_clock=clock)
        self.idempotency = IdempotencyStore(self.lock)
        self.capabilities = [cls(self) for cls in (Control, *capabilities)]
        self.router = Router(route for part in self.capabilities for route in part.routes())
        self._reset_counters()

    def start(self) -> None:
        self.webhooks.start()

    def stop(self) -> None:
        self.webhooks.stop()

    # --- dispatch --------------------------------------------------------------------
    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one HTTP request (never raises for bad input: that is a 4xx)."""
        match = self.router.resolve(request.method, request.path)
        try:
            if match.error:
                raise match.error
            if match.route.is_control:
                response = match.route.handler(request, *match.args)
            else:
                response = self._api(request, match.route, match.args)
        except ApiError as err:
            response = err.response()
        response.headers.setdefault("Request-Id", new_id("req_"))
        with self.lock:
            self._requests[f"{request.method} {match.name}"][str(response.status)] += 1
        return response

    def _api(self, request: SandboxRequest, route: Route, args: tuple[str, ...]) -> SandboxResponse:
        """Authentication, then faults, then the endpoint (with idempotency for POSTs)."""
        self._authenticate(request)
        fault = self._fault_for(request)
        if fault and fault.action in {"error", "rate_limited"}:
            return _fault_response(fault)
        if fault and fault.action == "delay" and fault.phase == "before":
            self.sleep(fault.ms / 1000)
        try:
            response = self._execute(request, route, args)
        except ApiError as err:
            response = err.response()
        if fault and fault.action == "delay" and fault.phase == "after":
            self.sleep(fault.ms / 1000)
        if fault and fault.action == "drop":
            response.drop = True
        return response

    def _execute(self, request: SandboxRequest, route: Route, args: tuple[str, ...]) -> SandboxResponse:
        if request.method != "POST":
            return route.handler(request, *args)
        data = parse_body(request)
        key = request.headers.get("idempotency-key")

        def execute() -> SandboxResponse:
            return route.handler(request, *args, data=data, idempotency_key=key)

        return execute() if key is None else self.idempotency.run(request, data, key, execute)

    def _authenticate(self, request: SandboxRequest) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(),
                                                                    self.config.api_key.encode()):
            raise ApiError(401, "invalid_request_error",
                           "Invalid API Key provided: use Authorization: Bearer <sandbox API key>.")

    def _fault_for(self, request: SandboxRequest) -> Fault | None:
        header = request.headers.get("x-sandbox-fault")
        try:
            fault = parse_fault_header(header) if header else None
        except FaultSpecError as err:
            raise invalid(str(err), param="X-Sandbox-Fault") from err
        wait = self.faults.rate_limited()
        if wait is not None:
            fault = Fault(action="rate_limited", retry_after=wait)
        return self._applied(fault or self.faults.take_request_fault(request.method, request.path))

    def _applied(self, fault: Fault | None) -> Fault | None:
        if fault:
            with self.lock:
                self._faults_applied[fault.action] += 1
        return fault

    # --- webhooks --------------------------------------------------------------------
    def emit(self, event_type: str, obj: dict) -> None:
        """Send the event `event_type` about `obj` (a snapshot) in the background, suffering
        the next webhook fault of the plan, if any."""
        event = {"id": new_id("evt_"), "object": "event", "type": event_type,
                 "created": int(self.clock()), "livemode": False, "data": {"object": obj}}
        fault = self._applied(self.faults.take_webhook_fault())
        action = fault.action if fault else None
        self.webhooks.enqueue(
            event,
            duplicate=action == "webhook_duplicate",
            delay=fault.ms / 1000 if action == "webhook_delay" else 0.0,
            reorder=(fault.count, fault.max_wait_ms / 1000) if action == "webhook_reorder" else None,
        )

    # --- state -----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every capability's state, idempotency keys, counters, faults and queued webhooks."""
        self.faults.clear()
        self.webhooks.reset()
        with self.lock:
            self.idempotency.reset()
            for part in self.capabilities:
                part.reset()
            self._reset_counters()

    def stats(self) -> dict:
        """What `GET /_control/stats` answers: each capability's counts, then the core's."""
        with self.lock:
            body = {}
            for part in self.capabilities:
                body.update(part.stats())
            body.update({
                "idempotent_replays": self.idempotency.replays,
                "requests": {route: dict(statuses) for route, statuses in self._requests.items()},
                "faults_applied": dict(self._faults_applied),
            })
        body["webhooks"] = self.webhooks.stats()
        return body

    def control_stats(self, request: SandboxRequest | None = None) -> SandboxResponse:
        """`GET /_control/stats` without HTTP (bench/sandbox_throughput.py reads it)."""
        return SandboxResponse(200, self.stats())

    def _reset_counters(self) -> None:
        self._requests: defaultdict[str, Counter] = defaultdict(Counter)
        self._faults_applied: Counter = Counter()


def _fault_response(fault: Fault) -> SandboxResponse:
    if fault.action == "rate_limited":
        return ApiError(429, "rate_limit_error", "Too many requests hit the API too quickly.",
                        code="rate_limit").response({"Retry-After": str(fault.retry_after)})
    return ApiError(fault.status, "api_error",
                    f"Injected fault: HTTP {fault.status} from the sandbox.").response()
