"""Errors of the webhooks app. Intake errors carry their HTTP status and contract `type`."""

from __future__ import annotations


class WebhookError(Exception):
    """Base of every error this app raises on purpose."""


class IntakeError(WebhookError):
    """A delivery refused at intake; the view answers `status_code` with `code` as the type."""

    status_code = 400
    code = "invalid_request"
    default_message = "The webhook request is invalid."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


class InvalidSignature(IntakeError):
    code = "invalid_signature"
    default_message = "The webhook signature is missing, malformed or does not match."


class TimestampOutOfTolerance(IntakeError):
    code = "timestamp_out_of_tolerance"
    default_message = "The webhook timestamp is too far from the current time."


class InvalidPayload(IntakeError):
    code = "invalid_payload"
    default_message = "The webhook body is not the JSON this provider sends."


class PayloadTooLarge(IntakeError):
    status_code = 413
    code = "payload_too_large"
    default_message = "The webhook body is over the size limit."


class ProviderNotFound(IntakeError):
    status_code = 404
    code = "not_found"
    default_message = "No enabled provider has this slug."


class HandlerRetry(WebhookError):
    """Raised by a handler when the event cannot be applied yet (e.g. the charge is not
    known yet): the event is retried with backoff and dead-lettered after the last attempt."""
