"""Errors of the idempotency layer; api.exceptions renders them in the contract's shape."""

from api.exceptions import ServiceError


class IdempotencyError(ServiceError):
    """Base of every idempotency error."""


class IdempotencyKeyMissing(IdempotencyError):
    status_code = 400
    default_code = "idempotency_key_missing"
    default_detail = "This request needs an Idempotency-Key header (any unique string up to 255 characters)."


class IdempotencyKeyInvalid(IdempotencyError):
    status_code = 400
    default_code = "idempotency_key_invalid"
    default_detail = "The Idempotency-Key header must be 1 to 255 characters."


class IdempotencyKeyReused(IdempotencyError):
    status_code = 422
    default_code = "idempotency_key_reused"
    default_detail = ("This Idempotency-Key was already used with a different method, path or body. "
                      "Use a new key for a new request.")


class IdempotencyKeyInUse(IdempotencyError):
    status_code = 409
    default_code = "idempotency_key_in_use"
    default_detail = "A request with this Idempotency-Key is still executing; retry after a moment."


class IdempotencyLockLost(Exception):
    """The record was taken over by another request (our lock went stale): stop, change nothing."""
