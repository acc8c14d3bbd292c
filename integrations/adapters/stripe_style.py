"""The shared HTTP steps of Stripe-style payment adapters.

The sandbox and stripe kinds (integrations/kinds/) subclass `StripeStyleAdapter` and differ
only in how a body goes on the wire.
"""

from __future__ import annotations

from integrations.adapters.base import (
    ChargeRequest,
    ChargeResult,
    PaymentAdapter,
    RefundRequest,
    RefundResult,
)
from integrations.errors import ProviderBadResponse, ProviderUnavailable

# 4xx answers that say "not now" rather than "no": the operation stays pending and is retried.
# 401/403 are our configuration (a wrong or rotated credential), 409 a concurrent request
# with the same key still running at the provider, 429 its rate limit. Stricter than
# CallResult.raise_for_error() (which calls 401/403/404/409/423 ProviderRejected): settling
# a charge as failed is final, so only a refusal of the request itself may do it.
_RETRY_LATER = {401, 403, 404, 408, 409, 423, 429}


class StripeStyleAdapter(PaymentAdapter):
    """Charges, retrieves and refunds against a Stripe-shaped API (`/v1/charges`, `/v1/refunds`).

    Subclasses say how a body goes on the wire (`encode`) and nothing else.
    """

    def encode(self, payload: dict) -> dict:
        """Keyword arguments for the client carrying `payload` (json=... or data=...)."""
        raise NotImplementedError

    # -- the interface ----------------------------------------------------------------
    def charge_create(self, request: ChargeRequest) -> ChargeResult:
        payload = {"amount": request.amount, "currency": request.currency.lower(), "source": request.source}
        if request.description:
            payload["description"] = request.description
        if request.metadata:
            payload["metadata"] = dict(request.metadata)
        result = self._call("POST", "/v1/charges", payload=payload, key=request.idempotency_key,
                            operation="charge.create")
        if result.ok:
            return self._charge(result.data)
        decline = self._decline(result)
        if decline is not None:
            return decline
        raise self._unavailable(result)

    def charge_retrieve(self, provider_charge_id: str) -> ChargeResult:
        result = self._call("GET", f"/v1/charges/{provider_charge_id}", operation="charge.retrieve")
        if result.ok:
            return self._charge(result.data)
        raise self._unavailable(result)

    def refund_create(self, request: RefundRequest) -> RefundResult:
        payload = {"charge": request.provider_charge_id, "amount": request.amount}
        result = self._call("POST", "/v1/refunds", payload=payload, key=request.idempotency_key,
                            operation="refund.create")
        data = result.data if isinstance(result.data, dict) else {}
        if result.ok:
            return RefundResult(status=str(data.get("status") or "succeeded"),
                                provider_refund_id=str(data.get("id") or ""),
                                failure_code=str(data.get("failure_reason") or ""))
        if self._definitive(result):
            error = data.get("error") or {}
            return RefundResult(status="failed", failure_code=str(error.get("code") or error.get("type") or ""),
                                failure_message=str(error.get("message") or "")[:1000])
        raise self._unavailable(result)

    # -- shared steps -----------------------------------------------------------------
    def _call(self, method: str, path: str, *, payload: dict | None = None, key: str | None = None,
              operation: str):
        """The client's CallResult. A missing credential raises the client's CredentialMissing
        unchanged (nothing was sent); the payments service treats it as "not now"."""
        from integrations.client import ProviderClient  # the client imports models; keep this lazy

        body = self.encode(payload) if payload is not None else {}
        return ProviderClient(self.provider).request(method, path, idempotency_key=key,
                                                     operation=operation, **body)

    @staticmethod
    def _definitive(result) -> bool:
        """A 4xx the provider means: the request was refused and retrying will not help."""
        return result.status is not None and 400 <= result.status < 500 and result.status not in _RETRY_LATER

    def _decline(self, result) -> ChargeResult | None:
        """A card error (402) or another definitive refusal, as a failed charge."""
        if not self._definitive(result):
            return None
        data = result.data if isinstance(result.data, dict) else {}
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        code = error.get("decline_code") or error.get("code") or error.get("type") or f"http_{result.status}"
        return ChargeResult(status="failed", provider_charge_id=str(error.get("charge") or ""),
                            failure_code=str(code)[:100],
                            failure_message=str(error.get("message") or "The provider declined the charge.")[:1000])

    @staticmethod
    def _charge(data) -> ChargeResult:
        data = data if isinstance(data, dict) else {}
        status = data.get("status")
        if status not in {"succeeded", "failed", "pending"}:
            status = "pending"  # an answer we do not understand settles nothing
        return ChargeResult(
            status=status,
            provider_charge_id=str(data.get("id") or ""),
            amount_refunded=int(data.get("amount_refunded") or 0),
            failure_code=str(data.get("failure_code") or "")[:100],
            failure_message=str(data.get("failure_message") or "")[:1000],
        )

    @staticmethod
    def _unavailable(result) -> ProviderUnavailable:
        """The error for a failed call that is not definitive, carrying the client's own result
        (so `error_code` stays what the client said, e.g. HTTP_401 or ETIMEDOUT)."""
        from integrations.client.results import EBADRESPONSE  # lazy, as in _call

        # An unreadable answer keeps the subclass raise_for_error() would give it.
        error = ProviderBadResponse if result.error_code == EBADRESPONSE else ProviderUnavailable
        return error(result)
