"""Errors of the integrations core."""


class IntegrationError(Exception):
    """Base of every error this app raises on purpose."""


class ProviderNotFound(IntegrationError):
    pass


class CredentialMissing(IntegrationError):
    """A provider has no current credential for a purpose in its environment."""
