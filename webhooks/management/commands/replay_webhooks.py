"""manage.py replay_webhooks: re-enqueue stored webhook events, printing each one."""

from __future__ import annotations

from datetime import UTC

from django.core.management.base import CommandError
from django.utils.dateparse import parse_date, parse_datetime

from config.commands import Command as BaseCommand
from integrations.models import Provider
from webhooks.models import EventStatus, WebhookEvent
from webhooks.replay import webhook_replay


class Command(BaseCommand):
    help = ("Replay webhook events: put them back to `received` and enqueue them. Select with "
            "--provider, --status, --since and/or --id (at least one). Processed and ignored "
            "events are only replayed with --force (handlers are idempotent: nothing changes).")

    def add_arguments(self, parser):
        parser.add_argument("--provider", metavar="SLUG", help="Only this provider's events.")
        parser.add_argument("--status", help=f"Only events in this status: {', '.join(EventStatus.values)}.")
        parser.add_argument("--since", metavar="ISO", help="Only events received at or after this "
                            "ISO 8601 date or time (UTC when no offset is given).")
        parser.add_argument("--id", dest="ids", metavar="ID", nargs="+", action="extend", default=[],
                            help="Event ids (the provider's) or row numbers.")
        parser.add_argument("--force", action="store_true", help="Also replay processed/ignored events.")

    def handle(self, *args, provider=None, status=None, since=None, ids=(), force=False, **options):
        if not (provider or status or since or ids):
            raise CommandError("nothing selected: give --provider, --status, --since or --id")
        if status and status not in EventStatus.values:
            raise CommandError(f"--status {status!r} is not one of {', '.join(EventStatus.values)}")
        since_at = self._since(since) if since else None
        events = WebhookEvent.objects.all()
        if provider:
            if not Provider.objects.filter(slug=provider).exists():
                raise CommandError(f"no provider with slug {provider!r}")
            events = events.filter(provider__slug=provider)
        if status:
            events = events.filter(status=status)
        if since:
            events = events.filter(received_at__gte=since_at)
        if ids:
            events = events.filter(pk__in=[int(i) for i in ids if i.isascii() and i.isdigit() and len(i) < 19]) | events.filter(event_id__in=ids)
        if ids:
            matched = set()
            for pk, event_id in events.values_list("pk", "event_id"):
                matched.update({str(pk), event_id})
            missing = [i for i in ids if i not in matched]
            if missing:
                self.stdout.write(f"not found (or not matching the other filters): {', '.join(missing)}")
        outcome = webhook_replay(events=events, force=force)
        for item in outcome.enqueued:
            self.stdout.write(f"enqueued {item.pk} {item.provider} {item.event_id} {item.type} "
                              f"(was {item.previous_status})")
        if outcome.skipped_final:
            self.stdout.write(f"skipped {len(outcome.skipped_final)} processed/ignored event(s) "
                              "(use --force to replay them)")
        if outcome.skipped_processing:
            self.stdout.write(f"skipped {len(outcome.skipped_processing)} event(s) being processed now")
        if outcome.skipped_purged:
            self.stdout.write(f"skipped {len(outcome.skipped_purged)} event(s) whose body was purged")
        self.stdout.write(f"{len(outcome.enqueued)} event(s) enqueued")

    @staticmethod
    def _since(text: str):
        try:
            value = parse_datetime(text)
        except ValueError:  # well-formed but impossible, e.g. month 13
            value = None
        if value is None:
            try:
                day = parse_date(text) if len(text) == 10 else None
            except ValueError:
                day = None
            if day is None:
                raise CommandError(f"--since {text!r} is not an ISO 8601 date or date-time")
            from datetime import datetime, time

            value = datetime.combine(day, time.min)
        return value if value.tzinfo else value.replace(tzinfo=UTC)
