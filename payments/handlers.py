"""Webhook handlers for charge events, for every provider kind with the "payments"
capability (Stripe and the sandbox today; same shape: `data.object` is the charge).
Registered when the payments app is ready.

The charge is found by (provider, provider charge id) and moved with
`payments.state.charge_apply_state`, which only ever moves it forward: a late
`charge.succeeded` after a refund changes nothing, and replays are no-ops.
"""

from __future__ import annotations

from typing import Any

from payments.models import Charge, ChargeStatus
from payments.state import ProviderChargeState, charge_apply_state
from webhooks.errors import HandlerRetry
from webhooks.registry import Event, HandlerResult, webhook_handler

CHARGE_EVENTS = ("charge.succeeded", "charge.failed", "charge.refunded")


def charge_object(payload: Any) -> dict:
    """`data.object` of the event; ValueError when the event does not carry a charge."""
    obj = (payload or {}).get("data", {}).get("object") if isinstance(payload, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
        raise ValueError("the event has no data.object.id (charge id)")
    return obj


def _int(obj: dict, name: str) -> int:
    value = obj.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"data.object.{name} must be a non-negative integer")
    return value


def state_for(type_: str, obj: dict) -> ProviderChargeState:
    """What the event says about the charge, as the payments app's state dataclass."""
    if type_ == "charge.succeeded":
        return ProviderChargeState(status=ChargeStatus.SUCCEEDED, provider_charge_id=obj["id"])
    if type_ == "charge.failed":
        return ProviderChargeState(status=ChargeStatus.FAILED, provider_charge_id=obj["id"],
                                   failure_code=str(obj.get("failure_code") or ""),
                                   failure_message=str(obj.get("failure_message") or ""))
    refunded, amount = _int(obj, "amount_refunded"), _int(obj, "amount")
    full = obj.get("refunded") is True or (amount and refunded >= amount)
    return ProviderChargeState(status=ChargeStatus.REFUNDED if full else ChargeStatus.PARTIALLY_REFUNDED,
                               amount_refunded=refunded, provider_charge_id=obj["id"])


@webhook_handler(capability="payments", types=CHARGE_EVENTS)
def charge_event(event: Event) -> HandlerResult:
    obj = charge_object(event.payload)
    state = state_for(event.type, obj)
    charge_id = (Charge.objects.filter(provider_id=event.provider_id, provider_charge_id=obj["id"])
                 .values_list("pk", flat=True).first())
    if charge_id is None:
        # The webhook can beat the API's own write of the provider charge id: try again later.
        raise HandlerRetry(f"no charge of this provider has provider_charge_id {obj['id']!r} yet")
    charge_apply_state(charge_id=charge_id, state=state, source=f"webhook:{event.event_id}")
    return HandlerResult(subject_type=Charge._meta.label_lower, subject_id=charge_id)
