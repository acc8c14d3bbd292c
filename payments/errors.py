"""Errors of the payments app, in the contract's error shape (see api.exceptions)."""

from api.exceptions import ServiceError


class PaymentError(ServiceError):
    """Base of every payments error."""


class ProviderUnavailableError(PaymentError):
    """The provider gave no answer to act on (the client's ProviderUnavailable or CredentialMissing)."""

    status_code = 503
    default_code = "provider_unavailable"
    default_detail = ("The payment provider could not be reached in time. Nothing was charged twice: "
                      "retry with the same Idempotency-Key to finish this request.")


class ChargeNotRefundable(PaymentError):
    status_code = 400
    default_code = "charge_not_refundable"
    default_detail = "Only a succeeded charge with an amount left can be refunded."


class RefundExceedsCharge(PaymentError):
    status_code = 400
    default_code = "refund_exceeds_charge"
    default_detail = "The refund is larger than what is left of the charge."
