"""Errors of the addresses app, in the contract's error shape (see api.exceptions)."""

from api.exceptions import ServiceError


class AddressError(ServiceError):
    """Base of every addresses error."""


class ProviderUnavailableError(AddressError):
    """The geocoding provider gave no usable answer in time (ProviderUnavailable, CredentialMissing)."""

    status_code = 503
    default_code = "provider_unavailable"
    default_detail = "The address provider could not be reached in time. Retry later."
