"""Payments: Stripe-like charges and refunds, paid with test tokens, with webhooks back."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass

from sandbox.capabilities.base import Capability
from sandbox.messages import ApiError, SandboxRequest, SandboxResponse, invalid, new_id, not_found
from sandbox.params import metadata, only
from sandbox.routing import Route

MAX_AMOUNT = 99_999_999
MAX_DELAY_MS = 60_000
DEFAULT_SETTLE_MS = 500
REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}
_DELAY_TOKEN = re.compile(r"^tok_delay_(\d{1,6})$")
_PENDING_TOKEN = re.compile(r"^tok_pending(?:_(\d{1,6}))?$")


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


class Tally:
    """Objects really made, in all, by status and by Idempotency-Key: a chaos run proves
    "no double charge" by comparing these with the service's own rows."""

    def __init__(self, *statuses: str):
        self.counts = Counter(dict.fromkeys(("total", *statuses, "without_idempotency_key"), 0))
        self.by_key: Counter = Counter()

    def add(self, idempotency_key: str | None, status: str | None = None) -> None:
        self.counts["total"] += 1
        if status:
            self.counts[status] += 1
        if idempotency_key is None:
            self.counts["without_idempotency_key"] += 1
        else:
            self.by_key[idempotency_key] += 1

    def describe(self) -> dict:
        return {**self.counts, "by_idempotency_key": dict(self.by_key)}


class Payments(Capability):
    """Charges and refunds, kept in memory; each change sends its `charge.*` event."""

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/v1/charges", self.charge_create),
            Route("GET", "/v1/charges/{id}", self.charge_get),
            Route("POST", "/v1/refunds", self.refund_create),
            Route("GET", "/v1/refunds/{id}", self.refund_get),
        ]

    def reset(self) -> None:
        self._charges: dict[str, dict] = {}
        self._refunds: dict[str, dict] = {}
        self._charge_tally = Tally("succeeded", "failed", "pending")
        self._refund_tally = Tally()

    def stats(self) -> dict:
        return {"charges": self._charge_tally.describe(), "refunds": self._refund_tally.describe()}

    # --- charges ---------------------------------------------------------------------
    def charge_create(self, request: SandboxRequest, *, data: dict,
                      idempotency_key: str | None) -> SandboxResponse:
        only(data, {"amount", "currency", "source", "description", "metadata"})
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
        charge_metadata = metadata(data.get("metadata"))
        outcome = token_outcome(source)
        if outcome.delay_ms:
            self.sandbox.sleep(outcome.delay_ms / 1000)

        declined = outcome.decline_code is not None
        pending = bool(outcome.settle_ms)
        status = "failed" if declined else "pending" if pending else "succeeded"
        charge = {
            "id": new_id("ch_"),
            "object": "charge",
            "amount": amount,
            "amount_captured": amount if status == "succeeded" else 0,
            "amount_refunded": 0,
            "currency": currency.lower(),
            "status": status,
            "paid": status == "succeeded",
            "captured": status == "succeeded",
            "refunded": False,
            "created": int(self.sandbox.clock()),
            "description": description,
            "metadata": charge_metadata,
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
        with self.sandbox.lock:
            self._charges[charge["id"]] = charge
            self._charge_tally.add(idempotency_key, status)
            snapshot = _snapshot(charge)
        if pending:
            timer = threading.Timer(outcome.settle_ms / 1000, self._settle, args=(charge["id"],))
            timer.daemon = True
            timer.start()
        else:
            self.sandbox.emit(f"charge.{status}", snapshot)
        if declined:
            raise ApiError(402, "card_error", outcome.message, code="card_declined",
                           decline_code=outcome.decline_code, charge=charge["id"])
        return SandboxResponse(200, snapshot)

    def _settle(self, charge_id: str) -> None:
        """A pending charge succeeds in the background, as bank payments do."""
        with self.sandbox.lock:
            charge = self._charges.get(charge_id)
            if charge is None or charge["status"] != "pending":
                return  # forgotten by a reset meanwhile
            charge.update(status="succeeded", paid=True, captured=True, amount_captured=charge["amount"])
            charge["outcome"]["type"] = "authorized"
            self._charge_tally.counts["pending"] -= 1
            self._charge_tally.counts["succeeded"] += 1
            snapshot = _snapshot(charge)
        self.sandbox.emit("charge.succeeded", snapshot)

    def charge_get(self, request: SandboxRequest, charge_id: str) -> SandboxResponse:
        return self._get("charge", charge_id)

    # --- refunds ---------------------------------------------------------------------
    def refund_create(self, request: SandboxRequest, *, data: dict,
                      idempotency_key: str | None) -> SandboxResponse:
        only(data, {"charge", "amount", "reason", "metadata"})
        charge_id = data.get("charge")
        if not isinstance(charge_id, str) or not charge_id:
            raise invalid("Missing required param: charge.", param="charge")
        amount = _amount(data.get("amount"), required=False)
        reason = data.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise invalid("reason must be duplicate, fraudulent or requested_by_customer.", param="reason")
        refund_metadata = metadata(data.get("metadata"))
        # Checking what is left and refunding it is one step under the lock: concurrent
        # refunds never add up to more than the charge.
        with self.sandbox.lock:
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
                "metadata": refund_metadata,
                "created": int(self.sandbox.clock()),
            }
            self._refunds[refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            charge["refunds"]["data"].insert(0, refund)
            charge["refunds"]["total_count"] += 1
            self._refund_tally.add(idempotency_key)
            snapshot, refund_copy = _snapshot(charge), _snapshot(refund)
        self.sandbox.emit("charge.refunded", snapshot)
        return SandboxResponse(200, refund_copy)

    def refund_get(self, request: SandboxRequest, refund_id: str) -> SandboxResponse:
        return self._get("refund", refund_id)

    def _get(self, kind: str, object_id: str) -> SandboxResponse:
        with self.sandbox.lock:  # a reset replaces the dicts: choose one under the lock
            found = {"charge": self._charges, "refund": self._refunds}[kind].get(object_id)
            if found is None:
                raise not_found(kind, object_id)
            return SandboxResponse(200, _snapshot(found))


def _amount(value: object, *, required: bool) -> int | None:
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_AMOUNT:
        raise invalid(f"amount must be an integer number of minor units from 1 to {MAX_AMOUNT}.",
                      param="amount", code="parameter_invalid_integer")
    return value


def _snapshot(value: dict) -> dict:
    """A deep copy: what leaves the lock (answers, events) never changes afterwards."""
    return json.loads(json.dumps(value))
