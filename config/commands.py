"""Base class for the project's management commands: every bad input is one line and exit 1.

Django already turns a CommandError raised by `handle` into one line; argument errors
(a bad --flag value, a missing option) would otherwise print the usage text and exit 2,
and a stray exception a traceback. Operators' scripts check for exit status 1.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    """Use instead of BaseCommand; raise CommandError for anything the operator got wrong."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message):
            if parser.called_from_command_line:
                sys.stderr.write(f"CommandError: {message} (see manage.py {subcommand} --help)\n")
                sys.exit(1)
            raise CommandError(message)

        parser.error = error
        return parser
