"""Services and selectors for provider credentials. Plaintext goes in and out only here."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from integrations.crypto import fingerprint
from integrations.errors import CredentialMissing
from integrations.models import Credential, Provider


def check_credential_value(value: str) -> None:
    """Provider secrets are printable ASCII (PEM keys may span lines). Anything else is a
    typo or a paste accident, and would only fail later, inside an HTTP header."""
    if not value or value != value.strip():
        raise ValueError("credential value must be non-empty, without surrounding whitespace")
    if not all(ch.isascii() and (ch.isprintable() or ch in "\n\r") for ch in value):
        raise ValueError("credential value must be printable ASCII (line breaks allowed for PEM keys)")


@sensitive_variables("value")
def credential_rotate(
    *,
    provider: Provider,
    purpose: str,
    value: str,
    environment: str | None = None,
    grace: timedelta | None = None,
) -> Credential:
    """Store `value` as the new current credential; the old one stays valid for `grace`.

    Without grace the old value stops being valid at once. Rows are locked so two
    rotations at once cannot both become current (the unique constraint backs this up).
    """
    check_credential_value(value)
    environment = environment or provider.environment
    now = timezone.now()
    with transaction.atomic():
        Provider.objects.select_for_update().filter(pk=provider.pk).first()
        same = Credential.objects.filter(provider=provider, environment=environment, purpose=purpose)
        same.current().update(active_until=now + (grace or timedelta(0)))
        version = (same.aggregate(v=Max("version"))["v"] or 0) + 1
        credential = Credential(provider=provider, environment=environment, purpose=purpose,
                                version=version, fingerprint=fingerprint(value), created=now)
        credential.value = value
        credential.save()
    return credential


def credential_value(*, provider: Provider, purpose: str, environment: str | None = None) -> str:
    """The current plaintext for outbound use. Raises CredentialMissing naming what to add."""
    environment = environment or provider.environment
    credential = (
        Credential.objects.current()
        .filter(provider=provider, environment=environment, purpose=purpose)
        .first()
    )
    if credential is None:
        raise CredentialMissing(
            f"provider {provider.slug!r} has no {purpose} credential for {environment}; "
            f"add one in the admin or with manage.py rotate_credential {provider.slug} {purpose}"
        )
    return credential.value


def credential_values_valid(*, provider: Provider, purpose: str, environment: str | None = None) -> list[str]:
    """Every currently valid plaintext, newest first (for verifying webhooks across a rotation)."""
    environment = environment or provider.environment
    rows = (
        Credential.objects.valid()
        .filter(provider=provider, environment=environment, purpose=purpose)
        .order_by("-version")
    )
    return [row.value for row in rows]


def credentials_valid_until(
    *, provider: Provider, purpose: str, environment: str | None = None
) -> list[tuple[str, datetime | None]]:
    """Every currently valid plaintext with the end of its validity (None: current), newest first.

    For callers that keep the values for a while (webhook verification's cache): they
    must drop a value once `active_until` has passed, so a grace period ends on time
    even though nothing is saved when it does.
    """
    environment = environment or provider.environment
    rows = (
        Credential.objects.valid()
        .filter(provider=provider, environment=environment, purpose=purpose)
        .order_by("-version")
    )
    return [(row.value, row.active_until) for row in rows]
