"""Charges and refunds as atomic phases with recovery points (the rocket-rides-atomic pattern).

A charge goes: (1) the row is created with its outbound idempotency key and the
request's recovery point moves to `charge_created`, in one transaction; (2) the provider
is called with that key, outside any transaction; (3) the outcome is stored. A process
killed anywhere is resumed by a retry with the same Idempotency-Key (which finds the
charge through its recovery point) or by the completer (tasks.py). Both call the
provider again with the same outbound key, which the provider deduplicates, so there
is never a second charge.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from integrations.adapters import ChargeRequest, ChargeResult, RefundRequest, RefundResult
from integrations.errors import CredentialMissing, ProviderUnavailable
from integrations.kinds import adapter_for, provider_offering
from integrations.models import Provider
from payments.conf import payment_settings
from payments.errors import ChargeNotRefundable, ProviderUnavailableError, RefundExceedsCharge
from payments.models import Charge, ChargeStatus, ChargeStatusChange, Refund, new_outbound_key
from payments.state import ProviderChargeState, charge_apply_state

logger = logging.getLogger(__name__)

PAYMENTS = "payments"  # the capability a provider's kind must offer (integrations.kinds)
CHARGE_CREATED = "charge_created"
REFUND_CREATED = "refund_created"
_REFUNDABLE = {ChargeStatus.SUCCEEDED, ChargeStatus.PARTIALLY_REFUNDED}
# What an adapter raises for "not now": the provider was not reached in time or asked us to
# come back (ProviderUnavailable), or it has no current credential, which is our configuration
# and not the caller's request. Both are a 503; the operation stays pending and resumes later.
_NOT_NOW = (ProviderUnavailable, CredentialMissing)


class Progress(Protocol):
    """Where a request stopped last time (idempotency.services.Execution implements it)."""

    resource_id: str

    def checkpoint(self, point: str, *, resource_id: str | None = None) -> None: ...


def _provider_unavailable(err: Exception, *, provider: Provider, **ids: str) -> ProviderUnavailableError:
    """Log why the provider gave no answer to act on (one of _NOT_NOW) and return the 503."""
    if isinstance(err, ProviderUnavailable):
        logger.warning("payment provider unavailable",
                       extra={**ids, "provider": provider.slug, "error_code": err.result.error_code})
    else:  # CredentialMissing: its message names the credential to add and how
        logger.warning("payment provider has no credential: %s", err, extra={**ids, "provider": provider.slug})
    return ProviderUnavailableError(headers={"Retry-After": "5"})


# --- selectors ------------------------------------------------------------------------
def payment_provider_get(*, slug: str | None) -> Provider:
    """The provider a charge goes to: named, PAYMENTS_DEFAULT_PROVIDER, or the only one."""
    return provider_offering(PAYMENTS, slug=slug, default_slug=payment_settings.DEFAULT_PROVIDER, what="payment")


# --- charges --------------------------------------------------------------------------
def charge_create(
    *,
    consumer,
    provider_slug: str | None,
    amount: int,
    currency: str,
    source: str,
    description: str = "",
    metadata: dict[str, str] | None = None,
    request_key: str = "",
    progress: Progress | None = None,
) -> Charge:
    """Create a charge and drive it to its outcome; resumes where `progress` says it stopped.

    `provider_slug` is resolved by payment_provider_get only when the charge is created: a
    resumed charge stays with its provider. Returns the charge (succeeded, failed =
    declined, or pending if the provider says so);
    raises ProviderUnavailableError (503) when the provider cannot be reached or has no current
    credential, leaving the charge pending for a retry with the same key or for the completer.
    """
    charge = None
    if progress is not None and progress.resource_id:
        charge = Charge.objects.select_related("provider").get(pk=progress.resource_id)
    if charge is None:
        provider = payment_provider_get(slug=provider_slug)
        with transaction.atomic():
            charge = Charge.objects.create(
                consumer=consumer, provider=provider, amount=amount, currency=currency.lower(), source=source,
                description=description, metadata=metadata or {}, request_key=request_key,
                outbound_idempotency_key=new_outbound_key("ch"),
            )
            ChargeStatusChange.objects.create(charge=charge, from_status="", to_status=charge.status,
                                              source="api")
            if progress is not None:
                progress.checkpoint(CHARGE_CREATED, resource_id=charge.id)
    if charge.status != ChargeStatus.PENDING:
        return charge  # finished by an earlier attempt, the completer or a webhook
    return charge_settle(charge=charge, source="api")


def charge_settle(*, charge: Charge, source: str) -> Charge:
    """Phases 2 and 3 for a pending charge: ask the provider (creating the charge with its
    outbound key, or retrieving it when its id is known) and store the answer."""
    adapter = adapter_for(charge.provider, PAYMENTS)
    try:
        if charge.provider_charge_id:
            result = adapter.charge_retrieve(charge.provider_charge_id)
        else:
            result = adapter.charge_create(ChargeRequest(
                amount=charge.amount, currency=charge.currency, source=charge.source,
                description=charge.description, metadata=charge.metadata,
                idempotency_key=charge.outbound_idempotency_key,
            ))
    except _NOT_NOW as err:
        raise _provider_unavailable(err, provider=charge.provider, charge=charge.id) from err
    return charge_store_outcome(charge_id=charge.id, result=result, source=source)


def charge_store_outcome(*, charge_id: str, result: ChargeResult, source: str) -> Charge:
    """Phase 3: the provider's answer onto the charge, monotonically (never backwards)."""
    state = ProviderChargeState(status=result.status, amount_refunded=result.amount_refunded,
                                provider_charge_id=result.provider_charge_id,
                                failure_code=result.failure_code, failure_message=result.failure_message)
    with transaction.atomic():
        if result.provider_charge_id:
            # Remember the provider's id even while pending, so the next attempt retrieves.
            Charge.objects.filter(pk=charge_id, provider_charge_id="").update(
                provider_charge_id=result.provider_charge_id)
        charge, _ = charge_apply_state(charge_id=charge_id, state=state, source=source)
    return charge


# --- refunds --------------------------------------------------------------------------
def refund_create(*, consumer, charge_id: str, amount: int | None = None,
                  progress: Progress | None = None) -> Refund:
    """Refund `amount` (default: all that is left) of a consumer's charge.

    The amount is reserved under a row lock on the charge, counting pending refunds, so
    concurrent refunds can never add up to more than the charge. Raises Charge.DoesNotExist
    for a charge that is not the consumer's, ChargeNotRefundable, RefundExceedsCharge and
    ProviderUnavailableError (the refund stays pending and is resumed like a charge).
    """
    refund = None
    if progress is not None and progress.resource_id:
        refund = Refund.objects.select_related("charge__provider").get(pk=progress.resource_id)
    if refund is None:
        with transaction.atomic():
            charge = Charge.objects.select_for_update().get(pk=charge_id, consumer=consumer)
            if charge.status not in _REFUNDABLE or not charge.provider_charge_id:
                raise ChargeNotRefundable(f"Charge {charge.id} is {charge.status}; it cannot be refunded.")
            reserved = charge.refunds.filter(
                status__in=[Refund.Status.PENDING, Refund.Status.SUCCEEDED]).aggregate(s=Sum("amount"))["s"] or 0
            left = charge.amount - max(reserved, charge.amount_refunded)
            if left <= 0:
                raise ChargeNotRefundable(f"Charge {charge.id} is already fully refunded.")
            amount = left if amount is None else amount
            if amount > left:
                raise RefundExceedsCharge(f"amount: {amount} is more than the {left} left to refund.",
                                          param="amount")
            refund = Refund.objects.create(charge=charge, amount=amount,
                                           outbound_idempotency_key=new_outbound_key("re"))
            if progress is not None:
                progress.checkpoint(REFUND_CREATED, resource_id=refund.id)
    if refund.status != Refund.Status.PENDING:
        return refund
    return refund_settle(refund=refund, source="api")


def refund_settle(*, refund: Refund, source: str) -> Refund:
    """Ask the provider to refund (with the refund's own outbound key) and store the answer."""
    charge = refund.charge
    try:
        result = adapter_for(charge.provider, PAYMENTS).refund_create(RefundRequest(
            provider_charge_id=charge.provider_charge_id, amount=refund.amount,
            idempotency_key=refund.outbound_idempotency_key,
        ))
    except _NOT_NOW as err:
        raise _provider_unavailable(err, provider=charge.provider, refund=refund.id) from err
    return refund_store_outcome(refund_id=refund.id, result=result, source=source)


def refund_store_outcome(*, refund_id: str, result: RefundResult, source: str) -> Refund:
    """Store a refund's outcome and, when it succeeded, the charge's refunded total."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("charge").get(pk=refund_id)
        if refund.status != Refund.Status.PENDING:
            return refund
        if result.status not in {Refund.Status.SUCCEEDED, Refund.Status.FAILED}:
            if result.provider_refund_id and not refund.provider_refund_id:
                refund.provider_refund_id = result.provider_refund_id
                refund.save(update_fields=["provider_refund_id", "updated"])
            return refund
        refund.status = result.status
        refund.provider_refund_id = result.provider_refund_id or refund.provider_refund_id
        refund.failure_code = result.failure_code[:100]
        refund.failure_message = result.failure_message[:1000]
        refund.save()
        if refund.status == Refund.Status.SUCCEEDED:
            charge = refund.charge
            total = charge.refunds.filter(status=Refund.Status.SUCCEEDED).aggregate(s=Sum("amount"))["s"] or 0
            status = ChargeStatus.REFUNDED if total >= charge.amount else ChargeStatus.PARTIALLY_REFUNDED
            charge_apply_state(charge_id=charge.id, state=ProviderChargeState(status=status, amount_refunded=total),
                               source=f"{source}:refund {refund.id}")
    return refund


# --- the completer --------------------------------------------------------------------
def _claim_for_completion(model, pk, seen_updated) -> bool:
    """Compare-and-set on `updated`: of several completers, one works on a row per round."""
    return bool(model.objects.filter(pk=pk, status="pending", updated=seen_updated).update(
        completion_attempts=F("completion_attempts") + 1, updated=timezone.now()))


def _complete_one(settle, **item) -> str:
    """Settle one charge or refund: "done", "still_pending", or "errors" (logged, and left
    for the next run: one broken row must not stop the completer for all the others)."""
    try:
        settled = settle(**item, source="completer")
    except ProviderUnavailableError:
        return "still_pending"
    except Exception:  # noqa: BLE001 - logged with its traceback; the row stays pending
        (what, obj), = item.items()
        logger.exception("completer could not settle %s", what, extra={what: obj.pk})
        return "errors"
    return "still_pending" if settled.status == "pending" else "done"


def payments_complete_stale(*, limit: int | None = None) -> dict[str, int]:
    """Drive pending charges and refunds that nobody touched for a while to a final state.

    Each is retried with its own outbound key (or retrieved by the provider's id), so
    this is safe to run at any time, in several workers, as often as wanted.
    """
    limit = limit or int(payment_settings.COMPLETER_BATCH_SIZE)
    cutoff = timezone.now() - timedelta(seconds=payment_settings.COMPLETER_STALE_SECONDS)
    done = {"charges": 0, "refunds": 0, "still_pending": 0, "errors": 0}
    stale = Q(status="pending", updated__lt=cutoff)
    for charge in Charge.objects.filter(stale).select_related("provider").order_by("updated")[:limit]:
        if not _claim_for_completion(Charge, charge.pk, charge.updated):
            continue
        outcome = _complete_one(charge_settle, charge=charge)
        done[outcome if outcome != "done" else "charges"] += 1
    for refund in Refund.objects.filter(stale).select_related("charge__provider").order_by("updated")[:limit]:
        if not _claim_for_completion(Refund, refund.pk, refund.updated):
            continue
        outcome = _complete_one(refund_settle, refund=refund)
        done[outcome if outcome != "done" else "refunds"] += 1
    return done
