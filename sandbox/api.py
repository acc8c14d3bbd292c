"""The sandbox provider's behaviour, independent of HTTP: a Stripe-like charges API.

`Sandbox.handle(SandboxRequest) -> SandboxResponse` is everything the provider does;
sandbox/server.py only moves bytes. State lives in memory and is lost on restart (or
on `POST /_control/reset`): the sandbox is a test double, not a ledger.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from sandbox import records
from sandbox.faults import Fault, FaultPlan, FaultSpecError, parse_fault_header
from sandbox.webhooks import WebhookSender, WebhookSettings, validate_secret

logger = logging.getLogger("sandbox")

MAX_AMOUNT = 99_999_999
MAX_DELAY_MS = 60_000
MAX_IDEMPOTENCY_KEY = 255
_DELAY_TOKEN = re.compile(r"^tok_delay_(\d{1,6})$")
_PENDING_TOKEN = re.compile(r"^tok_pending(?:_(\d{1,6}))?$")
DEFAULT_SETTLE_MS = 500


@dataclass
class SandboxRequest:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""


@dataclass
class SandboxResponse:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)
    # Close the connection without writing anything (the lost-response fault).
    drop: bool = False


class ApiError(Exception):
    """An error answered in Stripe's shape: {"error": {"type", "code", "message", ...}}."""

    def __init__(self, status: int, type_: str, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message,
                               **{k: v for k, v in extra.items() if v is not None}}}

    def response(self, headers: dict[str, str] | None = None) -> SandboxResponse:
        return SandboxResponse(self.status, self.body, headers or {})


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request_error", message, param=param, code=code)


@dataclass(frozen=True)
class TokenOutcome:
    """What a test token does: succeed (optionally slowly), decline with a code, or answer
    `pending` and settle to `succeeded` `settle_ms` later (the webhook is the only news)."""

    brand: str = "Visa"
    last4: str = "4242"
    decline_code: str | None = None
    message: str = "Your card was declined."
    delay_ms: int = 0
    settle_ms: int = 0


TOKENS = {
    "tok_visa": TokenOutcome(),
    "tok_mastercard": TokenOutcome(brand="MasterCard", last4="4444"),
    "tok_amex": TokenOutcome(brand="American Express", last4="8431"),
    "tok_chargeDeclined": TokenOutcome(last4="0002", decline_code="generic_decline"),
    "tok_chargeDeclinedInsufficientFunds": TokenOutcome(
        last4="9995", decline_code="insufficient_funds", message="Your card has insufficient funds."),
    "tok_chargeDeclinedFraudulent": TokenOutcome(last4="0019", decline_code="fraudulent"),
}


def token_outcome(source: str) -> TokenOutcome:
    """The behaviour of a test token; `tok_delay_<ms>` succeeds after ms milliseconds,
    `tok_pending[_<ms>]` is pending and succeeds ms (default 500) later."""
    if source in TOKENS:
        return TOKENS[source]
    match = _DELAY_TOKEN.match(source)
    if match and int(match.group(1)) <= MAX_DELAY_MS:
        return TokenOutcome(delay_ms=int(match.group(1)))
    match = _PENDING_TOKEN.match(source)
    if match and int(match.group(1) or DEFAULT_SETTLE_MS) <= MAX_DELAY_MS:
        return TokenOutcome(settle_ms=int(match.group(1) or DEFAULT_SETTLE_MS))
    raise invalid(f"No such token: '{source}'", param="source", code="resource_missing")


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


@dataclass
class SandboxConfig:
    """How the sandbox runs; the command builds it from options and environment."""

    api_key: str = "sk_test_sandbox"
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)


class Sandbox:
    """The provider: charges, refunds, records, fault injection and webhooks back."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self._sleep = sleep
        self._clock = clock
        self.faults = FaultPlan(clock=monotonic)
        self.webhooks = WebhookSender(lambda: self.config.webhooks, clock=monotonic, wall_clock=clock)
        self._lock = threading.Lock()
        # Requests with the same Idempotency-Key run one at a time (a retry waits for the
        # first attempt and then replays it); other keys never wait for each other.
        self._key_locks: dict[str, threading.Lock] = {}
        self._routes = [(name, re.compile(pattern), methods) for name, pattern, methods in [
            ("/v1/charges", r"/v1/charges", {"POST": self.charge_create}),
            ("/v1/charges/{id}", r"/v1/charges/(?P<charge_id>[^/]+)", {"GET": self.charge_get}),
            ("/v1/refunds", r"/v1/refunds", {"POST": self.refund_create}),
            ("/v1/refunds/{id}", r"/v1/refunds/(?P<refund_id>[^/]+)", {"GET": self.refund_get}),
            ("/v1/records", r"/v1/records", {"GET": self.records_list}),
            ("/_control/faults", r"/_control/faults",
             {"GET": self.control_faults, "POST": self.control_faults, "DELETE": self.control_faults}),
            ("/_control/reset", r"/_control/reset", {"POST": self.control_reset}),
            ("/_control/stats", r"/_control/stats", {"GET": self.control_stats}),
            ("/_control/config", r"/_control/config", {"GET": self.control_config, "POST": self.control_config}),
            ("/_control/health", r"/_control/health", {"GET": self.control_health}),
        ]]
        self._reset_state()

    def start(self) -> None:
        self.webhooks.start()

    def stop(self) -> None:
        self.webhooks.stop()

    # --- dispatch --------------------------------------------------------------------
    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one HTTP request (never raises for bad input: that is a 4xx)."""
        route, handler, params = self._route(request.method, request.path)
        try:
            if handler is None:
                raise ApiError(*params)
            if route.startswith("/_control"):
                response = handler(request, **params)
            else:
                response = self._api(request, handler, params)
        except ApiError as err:
            response = err.response()
        response.headers.setdefault("Request-Id", new_id("req_"))
        with self._lock:
            self._requests[f"{request.method} {route}"][str(response.status)] += 1
        return response

    def _route(self, method: str, path: str) -> tuple[str, Callable | None, dict | tuple]:
        """(route name, handler, path parameters), or a None handler and the 404/405 error."""
        for name, pattern, methods in self._routes:
            match = pattern.fullmatch(path)
            if match:
                if method not in methods:
                    return name, None, (405, "invalid_request_error", f"{method} is not allowed on {name}")
                return name, methods[method], match.groupdict()
        return "unknown", None, (404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _api(self, request: SandboxRequest, handler, params: dict) -> SandboxResponse:
        """Authentication, then faults, then the endpoint (with idempotency for POSTs)."""
        self._authenticate(request)
        fault = self._fault_for(request)
        if fault and fault.action in {"error", "rate_limited"}:
            return self._fault_response(fault)
        if fault and fault.action == "delay" and fault.phase == "before":
            self._sleep(fault.ms / 1000)
        try:
            if request.method == "POST":
                response = self._idempotent(request, handler, params)
            else:
                response = handler(request, **params)
        except ApiError as err:
            response = err.response()
        if fault and fault.action == "delay" and fault.phase == "after":
            self._sleep(fault.ms / 1000)
        if fault and fault.action == "drop":
            response.drop = True
        return response

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
        fault = fault or self.faults.take_request_fault(request.method, request.path)
        if fault:
            with self._lock:
                self._faults_applied[fault.action] += 1
        return fault

    def _fault_response(self, fault: Fault) -> SandboxResponse:
        if fault.action == "rate_limited":
            return ApiError(429, "rate_limit_error", "Too many requests hit the API too quickly.",
                            code="rate_limit").response({"Retry-After": str(fault.retry_after)})
        return ApiError(fault.status, "api_error",
                        f"Injected fault: HTTP {fault.status} from the sandbox.").response()

    def _idempotent(self, request: SandboxRequest, handler, params: dict) -> SandboxResponse:
        """Run a POST at most once per Idempotency-Key; the same key and parameters replay
        the stored answer, other parameters with that key are a 400. Only requests that
        began executing are stored (validation errors are not), as Stripe does."""
        data = parse_body(request)
        key = request.headers.get("idempotency-key")
        if key is None:
            return handler(request, data=data, idempotency_key=None, **params)
        if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
            raise invalid(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters.",
                          param="Idempotency-Key")
        fingerprint = hashlib.sha256(
            json.dumps([request.method, request.path, data], sort_keys=True).encode()).hexdigest()
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                stored = self._idempotency.get(key)
            if stored:
                stored_fingerprint, status, body = stored
                if stored_fingerprint != fingerprint:
                    raise ApiError(400, "idempotency_error",
                                   "Keys for idempotent requests can only be used with the same "
                                   "parameters they were first used with.", code="idempotency_key_reused")
                with self._lock:
                    self._replays += 1
                return SandboxResponse(status, json.loads(body), {"Idempotent-Replayed": "true",
                                                                  "Idempotency-Key": key})
            try:
                response = handler(request, data=data, idempotency_key=key, **params)
            except ApiError as err:
                if err.status == 400:
                    raise  # refused before executing: not stored, the key stays usable
                response = err.response()  # a decline executed: stored like a success
            with self._lock:
                self._idempotency[key] = (fingerprint, response.status, json.dumps(response.body))
            response.headers["Idempotency-Key"] = key
            return response

    # --- charges ---------------------------------------------------------------------
    def charge_create(self, request: SandboxRequest, *, data: dict, idempotency_key: str | None) -> SandboxResponse:
        _only(data, {"amount", "currency", "source", "description", "metadata"})
        amount = _amount(data.get("amount"), required=True)
        currency = data.get("currency")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise invalid("currency must be a three-letter ISO 4217 code.", param="currency")
        source = data.get("source")
        if not isinstance(source, str) or not source:
            raise invalid("Missing required param: source.", param="source")
        description = data.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > 1000):
            raise invalid("description must be a string of at most 1000 characters.", param="description")
        metadata = _metadata(data.get("metadata"))
        outcome = token_outcome(source)
        if outcome.delay_ms:
            self._sleep(outcome.delay_ms / 1000)

        declined = outcome.decline_code is not None
        pending = bool(outcome.settle_ms)
        charge = {
            "id": new_id("ch_"),
            "object": "charge",
            "amount": amount,
            "amount_captured": 0 if declined or pending else amount,
            "amount_refunded": 0,
            "currency": currency.lower(),
            "status": "failed" if declined else "pending" if pending else "succeeded",
            "paid": not declined and not pending,
            "captured": not declined and not pending,
            "refunded": False,
            "created": int(self._clock()),
            "description": description,
            "metadata": metadata,
            "livemode": False,
            "failure_code": "card_declined" if declined else None,
            "failure_message": outcome.message if declined else None,
            "outcome": {
                "type": "issuer_declined" if declined else "pending" if pending else "authorized",
                "network_status": "declined_by_network" if declined else "approved_by_network",
                "reason": outcome.decline_code,
                "seller_message": "The bank did not return any further details with this decline."
                if declined else "Payment complete.",
            },
            "source": {"id": new_id("card_"), "object": "card", "brand": outcome.brand,
                       "last4": outcome.last4, "token": source},
            "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0},
        }
        with self._lock:
            self._charges[charge["id"]] = charge
            self._charge_counts["total"] += 1
            self._charge_counts["failed" if declined else "pending" if pending else "succeeded"] += 1
            if idempotency_key is None:
                self._charge_counts["without_idempotency_key"] += 1
            else:
                self._charges_by_key[idempotency_key] += 1
            snapshot = _copy(charge)
        if pending:
            timer = threading.Timer(outcome.settle_ms / 1000, self._settle, args=(charge["id"],))
            timer.daemon = True
            timer.start()
        else:
            self._emit("charge.failed" if declined else "charge.succeeded", snapshot)
        if declined:
            raise ApiError(402, "card_error", outcome.message, code="card_declined",
                           decline_code=outcome.decline_code, charge=charge["id"])
        return SandboxResponse(200, snapshot)

    def _settle(self, charge_id: str) -> None:
        """A pending charge succeeds in the background, as bank payments do."""
        with self._lock:
            charge = self._charges.get(charge_id)
            if charge is None or charge["status"] != "pending":
                return  # forgotten by a reset meanwhile
            charge.update(status="succeeded", paid=True, captured=True, amount_captured=charge["amount"])
            charge["outcome"]["type"] = "authorized"
            self._charge_counts["pending"] -= 1
            self._charge_counts["succeeded"] += 1
            snapshot = _copy(charge)
        self._emit("charge.succeeded", snapshot)

    def charge_get(self, request: SandboxRequest, *, charge_id: str) -> SandboxResponse:
        with self._lock:
            charge = self._charges.get(charge_id)
            if charge is None:
                raise ApiError(404, "invalid_request_error", f"No such charge: '{charge_id}'",
                               code="resource_missing", param="id")
            return SandboxResponse(200, _copy(charge))

    # --- refunds ---------------------------------------------------------------------
    def refund_create(self, request: SandboxRequest, *, data: dict, idempotency_key: str | None) -> SandboxResponse:
        _only(data, {"charge", "amount", "reason", "metadata"})
        charge_id = data.get("charge")
        if not isinstance(charge_id, str) or not charge_id:
            raise invalid("Missing required param: charge.", param="charge")
        amount = _amount(data.get("amount"), required=False)
        reason = data.get("reason")
        if reason is not None and reason not in {"duplicate", "fraudulent", "requested_by_customer"}:
            raise invalid("reason must be duplicate, fraudulent or requested_by_customer.", param="reason")
        metadata = _metadata(data.get("metadata"))
        with self._lock:
            charge = self._charges.get(charge_id)
            if charge is None:
                raise invalid(f"No such charge: '{charge_id}'", param="charge", code="resource_missing")
            if charge["status"] != "succeeded":
                raise invalid(f"Charge {charge_id} did not succeed and cannot be refunded.",
                              param="charge", code="charge_not_refundable")
            left = charge["amount"] - charge["amount_refunded"]
            if left == 0:
                raise invalid(f"Charge {charge_id} has already been refunded.",
                              param="charge", code="charge_already_refunded")
            amount = left if amount is None else amount
            if amount > left:
                raise invalid(f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
                              param="amount", code="amount_too_large")
            refund = {
                "id": new_id("re_"),
                "object": "refund",
                "amount": amount,
                "charge": charge_id,
                "currency": charge["currency"],
                "status": "succeeded",
                "reason": reason,
                "metadata": metadata,
                "created": int(self._clock()),
            }
            self._refunds[refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            charge["refunds"]["data"].insert(0, refund)
            charge["refunds"]["total_count"] += 1
            self._refund_counts["total"] += 1
            if idempotency_key is None:
                self._refund_counts["without_idempotency_key"] += 1
            else:
                self._refunds_by_key[idempotency_key] += 1
            snapshot, refund_copy = _copy(charge), _copy(refund)
        self._emit("charge.refunded", snapshot)
        return SandboxResponse(200, refund_copy)

    def refund_get(self, request: SandboxRequest, *, refund_id: str) -> SandboxResponse:
        with self._lock:
            refund = self._refunds.get(refund_id)
            if refund is None:
                raise ApiError(404, "invalid_request_error", f"No such refund: '{refund_id}'",
                               code="resource_missing", param="id")
            return SandboxResponse(200, _copy(refund))

    # --- records ---------------------------------------------------------------------
    def records_list(self, request: SandboxRequest) -> SandboxResponse:
        raw_limit = request.query.get("limit") or str(records.DEFAULT_LIMIT)
        if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= records.MAX_LIMIT:
            raise invalid(f"limit must be an integer from 1 to {records.MAX_LIMIT}.", param="limit")
        cursor, starting_after = request.query.get("cursor") or None, request.query.get("starting_after") or None
        if cursor and starting_after:
            raise invalid("Pass cursor or starting_after, not both.", param="cursor")
        try:
            page = records.page(cursor=cursor, limit=int(raw_limit), starting_after=starting_after)
        except records.CursorError as err:
            param = "cursor" if cursor else "starting_after"
            raise invalid(f"{param} is not one this API returned.", param=param) from err
        return SandboxResponse(200, page)

    # --- webhooks --------------------------------------------------------------------
    def _emit(self, event_type: str, charge: dict) -> None:
        event = {"id": new_id("evt_"), "object": "event", "type": event_type,
                 "created": int(self._clock()), "livemode": False, "data": {"object": charge}}
        fault = self.faults.take_webhook_fault()
        if fault:
            with self._lock:
                self._faults_applied[fault.action] += 1
        self.webhooks.enqueue(
            event,
            duplicate=bool(fault and fault.action == "webhook_duplicate"),
            delay=fault.ms / 1000 if fault and fault.action == "webhook_delay" else 0.0,
            reorder=(fault.count, fault.max_wait_ms / 1000)
            if fault and fault.action == "webhook_reorder" else None,
        )

    # --- control ---------------------------------------------------------------------
    def control_faults(self, request: SandboxRequest) -> SandboxResponse:
        """GET: the plan; POST: replace it (append with ?append=1); DELETE: clear it."""
        if request.method == "POST":
            try:
                self.faults.configure(parse_json(request.body),
                                      replace=request.query.get("append") not in {"1", "true"})
            except FaultSpecError as err:
                raise invalid(str(err)) from err
        elif request.method == "DELETE":
            self.faults.clear()
        return SandboxResponse(200, self.faults.describe())

    def control_reset(self, request: SandboxRequest) -> SandboxResponse:
        """Forget charges, refunds, idempotency keys, counters, faults and queued webhooks."""
        self.faults.clear()
        self.webhooks.reset()
        self._reset_state()
        return SandboxResponse(200, {"reset": True})

    def control_stats(self, request: SandboxRequest) -> SandboxResponse:
        with self._lock:
            body = {
                "charges": {**self._charge_counts, "by_idempotency_key": dict(self._charges_by_key)},
                "refunds": {**self._refund_counts, "by_idempotency_key": dict(self._refunds_by_key)},
                "idempotent_replays": self._replays,
                "requests": {route: dict(statuses) for route, statuses in self._requests.items()},
                "faults_applied": dict(self._faults_applied),
            }
        body["webhooks"] = self.webhooks.stats()
        return SandboxResponse(200, body)

    def control_config(self, request: SandboxRequest) -> SandboxResponse:
        """GET: the webhook settings (secrets masked); POST: change some of them at once."""
        if request.method == "POST":
            self._configure(parse_json(request.body))
        hooks = self.config.webhooks
        return SandboxResponse(200, {
            "webhook_url": hooks.url,
            "webhook_secret_set": bool(hooks.secret),
            "webhook_max_attempts": hooks.max_attempts,
            "webhook_backoff_base": hooks.backoff_base,
            "webhook_backoff_max": hooks.backoff_max,
        })

    def control_health(self, request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse(200, {"status": "ok"})

    def _configure(self, data: object) -> None:
        if not isinstance(data, dict):
            raise invalid("the body must be a JSON object")
        _only(data, {"webhook_url", "webhook_secret", "webhook_max_attempts", "webhook_backoff_base",
                     "webhook_backoff_max", "api_key"})
        hooks = self.config.webhooks
        changes: dict = {}
        for name in ("webhook_url", "webhook_secret", "api_key"):
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
            changes["max_attempts"] = value
        for name in ("webhook_backoff_base", "webhook_backoff_max"):
            if name in data:
                value = data[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
                    raise invalid(f"{name} must be seconds between 0 and 3600.", param=name)
                changes[name.removeprefix("webhook_")] = float(value)
        for name in ("webhook_url", "webhook_secret"):
            if name in data:
                changes[name.removeprefix("webhook_")] = data[name]
        for name, value in changes.items():
            setattr(hooks, name, value)
        if "api_key" in data:
            self.config.api_key = data["api_key"]

    def _reset_state(self) -> None:
        with self._lock:
            self._charges: dict[str, dict] = {}
            self._refunds: dict[str, dict] = {}
            self._idempotency: dict[str, tuple[str, int, str]] = {}
            self._key_locks = {}
            self._charge_counts = Counter({"total": 0, "succeeded": 0, "failed": 0, "pending": 0,
                                           "without_idempotency_key": 0})
            self._charges_by_key: Counter = Counter()
            self._refund_counts = Counter({"total": 0, "without_idempotency_key": 0})
            self._refunds_by_key: Counter = Counter()
            self._replays = 0
            self._requests: defaultdict[str, Counter] = defaultdict(Counter)
            self._faults_applied: Counter = Counter()


# --- parsing helpers ---------------------------------------------------------------------
def parse_json(body: bytes) -> object:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise invalid("The body is not valid JSON.") from err


def parse_body(request: SandboxRequest) -> dict:
    """POST parameters: a JSON object, or Stripe's form encoding (`metadata[key]=value`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # `curl -d '{...}'` labels JSON as a form: a body that opens like JSON is read as JSON.
    looks_like_json = request.body.lstrip()[:1] in (b"{", b"[")
    if content_type == "application/x-www-form-urlencoded" and not looks_like_json:
        try:
            pairs = parse_qs(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as err:
            raise invalid("The body is not valid UTF-8.") from err
        data: dict = {}
        for name, values in pairs.items():
            match = re.fullmatch(r"(\w+)\[(\w+)\]", name)
            if match:
                data.setdefault(match.group(1), {})[match.group(2)] = values[-1]
            else:
                data[name] = int(values[-1]) if name == "amount" and values[-1].isascii() and values[-1].isdigit() else values[-1]
        return data
    data = parse_json(request.body)
    if not isinstance(data, dict):
        raise invalid("The body must be a JSON object.")
    return data


def _only(data: dict, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise invalid(f"Received unknown parameter: {unknown[0]}", param=unknown[0],
                      code="parameter_unknown")


def _amount(value: object, *, required: bool) -> int | None:
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_AMOUNT:
        raise invalid(f"amount must be an integer number of minor units from 1 to {MAX_AMOUNT}.",
                      param="amount", code="parameter_invalid_integer")
    return value


def _metadata(value: object) -> dict[str, str]:
    """Stripe keeps metadata as strings: numbers are converted, anything nested is refused."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 50:
        raise invalid("metadata must be an object of at most 50 keys.", param="metadata")
    result = {}
    for key, item in value.items():
        if isinstance(item, dict | list) or item is None or len(str(key)) > 40 or len(str(item)) > 500:
            raise invalid("metadata values must be strings or numbers (keys up to 40 characters, "
                          "values up to 500).", param=f"metadata[{key}]")
        result[str(key)] = str(item).lower() if isinstance(item, bool) else str(item)
    return result


def _copy(value: dict) -> dict:
    return json.loads(json.dumps(value))
