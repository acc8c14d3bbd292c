"""Applying what a provider says about a charge, monotonically (never backwards)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from payments.models import STATUS_RANK, Charge, ChargeStatus, ChargeStatusChange


@dataclass(frozen=True)
class ProviderChargeState:
    """What the provider reports about one charge (from a response, a retrieve or a webhook)."""

    status: str  # a ChargeStatus value
    amount_refunded: int = 0
    provider_charge_id: str = ""
    failure_code: str = ""
    failure_message: str = ""


def charge_apply_state(*, charge_id: str, state: ProviderChargeState, source: str) -> tuple[Charge, bool]:
    """Move a charge forward to `state` if that is progress; returns (charge, changed).

    Idempotent: applying the same or an older state again changes nothing, so webhook
    handlers, retries and the completer may all call it in any order.
    """
    with transaction.atomic():
        charge = Charge.objects.select_for_update().get(pk=charge_id)
        new_rank, old_rank = STATUS_RANK[ChargeStatus(state.status)], STATUS_RANK[ChargeStatus(charge.status)]
        more_refunded = state.amount_refunded > charge.amount_refunded
        if new_rank < old_rank or (new_rank == old_rank and not more_refunded):
            return charge, False
        if old_rank == 1 and new_rank == 1:
            return charge, False  # succeeded and failed are both final outcomes of the attempt
        previous = charge.status
        charge.status = state.status
        charge.amount_refunded = min(max(charge.amount_refunded, state.amount_refunded), charge.amount)
        if state.provider_charge_id and not charge.provider_charge_id:
            charge.provider_charge_id = state.provider_charge_id
        if state.status == ChargeStatus.FAILED:
            charge.failure_code = state.failure_code[:100]
            charge.failure_message = state.failure_message[:1000]
        charge.save()
        ChargeStatusChange.objects.create(charge=charge, from_status=previous, to_status=charge.status,
                                          amount_refunded=charge.amount_refunded, source=source[:100])
        return charge, True
