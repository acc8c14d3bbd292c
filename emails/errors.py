"""Errors of the emails app, in the contract's error shape (see api.exceptions)."""

from api.exceptions import ServiceError


class EmailError(ServiceError):
    """Base of every emails error."""


class EmailNotResendable(EmailError):
    status_code = 409
    default_code = "email_not_resendable"
    default_detail = "Only an email whose delivery is unknown can be resent."
