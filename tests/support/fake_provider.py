"""A Stripe-shaped payment provider on a loopback port, for tests and benchmarks.

Speaks JSON (sandbox kind) and form encoding (stripe kind) on `POST /v1/charges`,
`GET /v1/charges/{id}` and `POST /v1/refunds`, deduplicates by `Idempotency-Key` like
Stripe (same key: the stored answer again), and counts everything so a test can assert
"exactly one provider charge". Faults: `mode = "down"` answers 503, `gate` holds charge
creations until the test releases them (to keep a request in flight on purpose).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

DECLINED_SOURCE = "tok_chargeDeclined"


def _form_decode(body: str) -> dict:
    """Stripe form encoding back into a dict (`metadata[k]=v` -> {"metadata": {"k": "v"}})."""
    data: dict = {}
    for name, value in parse_qsl(body, keep_blank_values=True):
        if "[" in name and name.endswith("]"):
            parent, child = name[:-1].split("[", 1)
            data.setdefault(parent, {})[child] = value
        else:
            data[name] = value
    return data


class FakeProvider:
    """Start with `start()` (returns the base URL), stop with `stop()`; or use as a context manager."""

    def __init__(self, *, gate_timeout: float = 10.0):
        self.lock = threading.Lock()
        self.calls_by_key: Counter[str] = Counter()  # every POST, by Idempotency-Key
        self.charges: dict[str, dict] = {}  # what the provider actually created
        self.refunds: dict[str, dict] = {}
        self.requests: list[dict] = []
        self._answers: dict[str, tuple[int, dict]] = {}  # Idempotency-Key -> stored answer
        self.mode = "ok"
        self.gate: threading.Event | None = None
        self.gate_timeout = gate_timeout
        self.charge_entered = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self.base_url

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- queries for tests ------------------------------------------------------------
    def charges_for_key(self, key: str) -> list[dict]:
        return [c for c in self.charges.values() if c["_key"] == key]

    # -- the API ----------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode("utf-8") if length else ""
        if "json" in (handler.headers.get("Content-Type") or ""):
            body = json.loads(raw or "{}")
        else:
            body = _form_decode(raw)
        key = handler.headers.get("Idempotency-Key") or ""
        with self.lock:
            self.requests.append({"method": method, "path": handler.path, "body": body, "key": key,
                                  "authorization": handler.headers.get("Authorization", ""),
                                  "content_type": handler.headers.get("Content-Type", "")})
            if method == "POST":
                self.calls_by_key[key] += 1
        status, answer = self._answer(method, handler.path, body, key, handler.headers)
        payload = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, method: str, path: str, body: dict, key: str, headers) -> tuple[int, dict]:
        if not (headers.get("Authorization") or "").startswith("Bearer "):
            return 401, {"error": {"type": "invalid_request_error", "message": "No API key provided."}}
        if self.mode == "down":
            return 503, {"error": {"type": "api_error", "message": "Service unavailable."}}
        if method == "GET" and path.startswith("/search"):
            return 200, []  # a geocoding search that finds nothing
        if method == "GET" and path.startswith("/v1/charges/"):
            charge = self.charges.get(path.rsplit("/", 1)[1])
            if charge is None:
                return 404, {"error": {"type": "invalid_request_error", "message": "No such charge."}}
            return 200, self._public(charge)
        if method == "POST" and path in {"/v1/charges", "/v1/refunds"}:
            if path == "/v1/charges":
                self.charge_entered.set()
                if self.gate is not None:
                    self.gate.wait(self.gate_timeout)
            with self.lock:
                if key and key in self._answers:  # Stripe: same key, same answer
                    return self._answers[key]
                answer = self._charge(body, key) if path == "/v1/charges" else self._refund(body, key)
                if key:
                    self._answers[key] = answer
                return answer
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL {path}."}}

    def _charge(self, body: dict, key: str) -> tuple[int, dict]:
        charge_id = "ch_fake_" + secrets.token_hex(8)
        declined = body.get("source") == DECLINED_SOURCE
        charge = {
            "id": charge_id, "object": "charge", "amount": int(body["amount"]), "currency": body["currency"],
            "status": "failed" if declined else "succeeded", "amount_refunded": 0, "refunded": False,
            "paid": not declined, "created": int(time.time()), "metadata": body.get("metadata") or {},
            "description": body.get("description"),
            "failure_code": "card_declined" if declined else None,
            "failure_message": "Your card was declined." if declined else None, "_key": key,
        }
        self.charges[charge_id] = charge
        if declined:
            return 402, {"error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                                   "message": "Your card was declined.", "charge": charge_id}}
        return 200, self._public(charge)

    def _refund(self, body: dict, key: str) -> tuple[int, dict]:
        charge = self.charges.get(body.get("charge"))
        amount = int(body.get("amount") or 0)
        if charge is None:
            return 404, {"error": {"type": "invalid_request_error", "message": "No such charge."}}
        if amount > charge["amount"] - charge["amount_refunded"]:
            return 400, {"error": {"type": "invalid_request_error", "code": "amount_too_large",
                                   "message": "Refund amount is greater than unrefunded amount."}}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refund = {"id": "re_fake_" + secrets.token_hex(8), "object": "refund", "amount": amount,
                  "charge": charge["id"], "status": "succeeded", "_key": key}
        self.refunds[refund["id"]] = refund
        return 200, self._public(refund)

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}
