"""manage.py webhook_relay: hand stored webhook events to the django-q2 workers until stopped."""

from __future__ import annotations

import logging
import signal
import threading

from config.commands import Command as BaseCommand
from webhooks.conf import webhook_settings
from webhooks.relay import webhook_relay_run

logger = logging.getLogger("webhooks.relay")


class Command(BaseCommand):
    help = ("Relay new and replayed webhook events from their rows to the task queue, in batches, "
            "until SIGTERM or SIGINT (the batch in hand is finished first). Run one or more next to "
            "qcluster; without it events are still processed, after WEBHOOK_STALE_RECEIVED_SECONDS, "
            "by the sweeper.")

    def add_arguments(self, parser):
        parser.add_argument("--poll", type=float, default=None, metavar="SECONDS",
                            help="Wait between passes while idle (default: WEBHOOK_RELAY_POLL_SECONDS, "
                                 f"{webhook_settings.RELAY_POLL_SECONDS}).")
        parser.add_argument("--batch", type=int, default=None, metavar="N",
                            help="Events claimed per pass (default: WEBHOOK_RELAY_BATCH, "
                                 f"{webhook_settings.RELAY_BATCH}).")

    def handle(self, *args, poll=None, batch=None, **options):
        stop = threading.Event()

        def request_stop(signum, frame):
            stop.set()

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        poll = webhook_settings.RELAY_POLL_SECONDS if poll is None else poll
        batch = batch or webhook_settings.RELAY_BATCH
        logger.info("webhook relay started", extra={"poll_seconds": poll, "batch": batch})
        self.stdout.write(f"webhook relay running (poll {poll}s, batch {batch}); SIGTERM or Ctrl-C stops it")
        try:
            webhook_relay_run(stop, poll=poll, limit=batch)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        logger.info("webhook relay stopped")
        self.stdout.write("webhook relay stopped")
