"""manage.py configure_provider SLUG --kind KIND --base-url URL: create or update a provider."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from config.commands import Command as BaseCommand
from integrations.kinds import all_kinds, get_kind
from integrations.models import Environment, Provider


class Command(BaseCommand):
    help = "Create or update a provider (idempotent, for deploy scripts)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--kind", required=True, help=f"one of: {', '.join(_kind_names())}")
        parser.add_argument("--base-url", required=True)
        parser.add_argument("--name")
        parser.add_argument("--environment", help="sandbox or production")
        parser.add_argument("--disable", action="store_true", help="disable the provider")

    def handle(self, *args, slug, kind, base_url, name, environment, disable, **options):
        kinds = _kind_names()
        if kind not in kinds:
            raise CommandError(f"unknown kind {kind!r}; use one of: {', '.join(kinds)}")
        if environment is not None and environment not in Environment.values:
            raise CommandError(f"unknown environment {environment!r}; use sandbox or production")
        with transaction.atomic():
            provider = Provider.objects.select_for_update().filter(slug=slug).first()
            created = provider is None
            if created:
                provider = Provider(slug=slug, name=name or slug)
            provider.kind = kind
            if created:
                get_kind(kind).apply_provider_defaults(provider)
            provider.base_url = base_url
            if name:
                provider.name = name
            if environment:
                provider.environment = environment
            # Re-running without --disable re-enables: the command states the whole wish.
            provider.enabled = not disable
            try:
                provider.full_clean()
            except ValidationError as err:
                problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in err.message_dict.items())
                raise CommandError(f"invalid provider: {problems}") from None
            provider.save()
        state = "enabled" if provider.enabled else "disabled"
        self.stdout.write(f"{'created' if created else 'updated'} provider {slug} "
                          f"({kind}, {provider.environment}, {state})")


def _kind_names() -> list[str]:
    # Read when the command runs, so a kind added to integrations/kinds is accepted at once.
    return [k.name for k in all_kinds()]
