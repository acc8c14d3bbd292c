"""manage.py create_api_key NAME: a new key for a consumer, printed once on the last line."""

from django.core.management.base import CommandError

from api.models import api_key_create
from config.commands import Command as BaseCommand


class Command(BaseCommand):
    help = "Create an API key for the consumer NAME (created if new). The key is printed alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--label", default="", help="a note on what the key is for")

    def handle(self, *args, name, label, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("NAME must be 1 to 100 characters")
        if len(label) > 100:
            raise CommandError("--label must be at most 100 characters")
        key, raw = api_key_create(consumer_name=name, label=label)
        self.stdout.write(f"created key {key.prefix}… for consumer {key.consumer.name}; "
                          "store it now, it cannot be shown again:")
        self.stdout.write(raw)
