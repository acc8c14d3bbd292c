"""manage.py rotate_credential SLUG PURPOSE: store a new credential value, optionally with a grace period."""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta

from django.core.management.base import CommandError

from config.commands import Command as BaseCommand
from integrations.credentials import credential_rotate
from integrations.models import CredentialPurpose, Environment, Provider

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# A grace period is for deliveries in flight, not a second permanent secret.
MAX_GRACE = timedelta(days=90)


def parse_duration(raw: str) -> timedelta:
    """'90s', '15m', '24h', '7d' -> timedelta."""
    match = _DURATION.match(raw.strip())
    if not match or len(match.group(1)) > 9:
        raise CommandError(f"--grace must look like 90s, 15m, 24h or 7d, not {raw!r}")
    grace = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if grace > MAX_GRACE:
        raise CommandError(f"--grace is at most {MAX_GRACE.days} days")
    return grace


class Command(BaseCommand):
    help = (
        "Store a new value for a provider credential. The value is read from standard input "
        "(or from the variable named by --from-env), never from the command line."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("purpose", help=f"one of: {', '.join(CredentialPurpose.values)}")
        parser.add_argument("--environment", choices=Environment.values,
                            help="default: the provider's current environment")
        parser.add_argument("--grace", help="keep the old value valid this long (e.g. 24h)")
        parser.add_argument("--from-env", metavar="VAR", help="read the value from this environment variable")

    def handle(self, *args, slug, purpose, environment, grace, from_env, **options):
        provider = Provider.objects.filter(slug=slug).first()
        if provider is None:
            raise CommandError(f"unknown provider {slug!r}")
        if purpose not in CredentialPurpose.values:
            raise CommandError(f"unknown purpose {purpose!r}; use one of: {', '.join(CredentialPurpose.values)}")
        grace_delta = parse_duration(grace) if grace else None
        value = self._read_value(from_env)
        try:
            credential = credential_rotate(provider=provider, purpose=purpose, value=value,
                                           environment=environment, grace=grace_delta)
        except ValueError as err:
            raise CommandError(str(err)) from None
        kept = f"; the previous value stays valid for {grace}" if grace and credential.version > 1 else ""
        self.stdout.write(f"stored {credential} (fingerprint {credential.fingerprint}){kept}")

    def _read_value(self, from_env: str | None) -> str:
        if from_env:
            value = os.environ.get(from_env, "")
            if not value:
                raise CommandError(f"environment variable {from_env} is empty or not set")
        else:
            if sys.stdin is None or sys.stdin.isatty():
                self.stderr.write("Enter the new value, then Ctrl-D:")
            value = sys.stdin.read() if sys.stdin else ""
            # One trailing newline is what `echo` and here-strings add; it is not part of the value.
            value = value[:-1] if value.endswith("\n") else value
            value = value[:-1] if value.endswith("\r") else value
        if not value.strip():
            raise CommandError("empty value: nothing was changed")
        if value != value.strip():
            raise CommandError("the value has surrounding whitespace: nothing was changed")
        return value
