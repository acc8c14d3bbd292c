"""The shared HTTP steps of Stripe-style payment adapters.

The sandbox and stripe kinds (integrations/kinds/) subclass `StripeStyleAdapter` and differ
only in how a body goes on the wire.
"""

from __future__ import annotations

from integrations.adapters.base import (
    AdapterUnavailable,
    ChargeRequest,
    ChargeResult,
    PaymentAdapter,
    RefundRequest,
    RefundResult,
)

# 4xx answers that say "not now" rather than "no": the operation stays pending and is retried.
# 401/403 are our configuration (a wrong or rotated credential), 409 a concurrent request
# with the same key still running at the provider, 429 its rate limit.
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
        raise self._unavailable(result, "charge.create")

    def charge_retrieve(self, provider_charge_id: str) -> ChargeResult:
        result = self._call("GET", f"/v1/charges/{provider_charge_id}", operation="charge.retrieve")
        if result.ok:
            return self._charge(result.data)
        raise self._unavailable(result, "charge.retrieve")

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
        raise self._unavailable(result, "refund.create")

    # -- shared steps -----------------------------------------------------------------
    def _call(self, method: str, path: str, *, payload: dict | None = None, key: str | None = None,
              operation: str):
        from integrations.client import ProviderClient  # the client imports models; keep this lazy
        from integrations.errors import CredentialMissing

        body = self.encode(payload) if payload is not None else {}
        try:
            return ProviderClient(self.provider).request(method, path, idempotency_key=key,
                                                         operation=operation, **body)
        except CredentialMissing as err:
            # Our configuration, not the caller's request: "not now" (503, the operation stays
            # pending and resumes once staff add the credential), never a 500.
            raise AdapterUnavailable(str(err), provider=self.provider.slug, status=None,
                                     code="CREDENTIAL_MISSING") from err

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

    def _unavailable(self, result, operation: str) -> AdapterUnavailable:
        code = result.error_code or f"HTTP_{result.status}"
        return AdapterUnavailable(
            f"{self.provider.slug}: {operation} failed with {code}: {result.message or ''}".strip(),
            provider=self.provider.slug, status=result.status, code=code,
        )
