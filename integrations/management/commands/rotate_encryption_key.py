"""manage.py rotate_encryption_key: re-encrypt every encrypted value under the newest key.

Safe to interrupt and re-run: it selects only values whose key id is not the newest,
so a second run resumes where the first stopped. Safe while the service runs: each
batch locks its rows, and every process accepts all configured keys during the rollout.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import transaction

from config.commands import Command as BaseCommand
from integrations import crypto


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the first key of FIELD_ENCRYPTION_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200)
        parser.add_argument("--dry-run", action="store_true",
                            help="count what would be re-encrypted and check that all of it decrypts")

    def handle(self, *args, batch_size, dry_run, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        primary = crypto.primary_key_id()
        self.stdout.write(f"newest key: {primary}; configured keys: {', '.join(crypto.keyring())}")
        failures: list[str] = []
        for model in crypto.encrypted_models():
            for attr in model._encrypted_values.values():
                label = f"{model._meta.label}.{attr.name}"
                if dry_run:
                    failures += self._check(model, attr, label, primary, report_pending=True)
                else:
                    failures += self._rotate(model, attr, label, primary, batch_size)
        if dry_run:
            self._finish(failures, "dry run: nothing was changed")
            return
        # The closing check reads every value back under the configured keys.
        for model in crypto.encrypted_models():
            for attr in model._encrypted_values.values():
                label = f"{model._meta.label}.{attr.name}"
                failures += self._check(model, attr, label, primary, report_pending=False)
        self._finish(failures, f"every value decrypts and is under key {primary}")

    def _stale(self, model, attr, primary):
        return (
            model.objects.exclude(**{attr.key_id_field: primary})
            .exclude(**{attr.ciphertext_field: ""})
            .order_by("pk")
        )

    def _rotate(self, model, attr, label, primary, batch_size) -> list[str]:
        total = self._stale(model, attr, primary).count()
        done, failed = 0, []
        self.stdout.write(f"{label}: {total} to re-encrypt")
        while True:
            with transaction.atomic():
                pending = self._stale(model, attr, primary).exclude(pk__in=[pk for pk, _ in failed])
                rows = list(pending.select_for_update()[:batch_size])
                if not rows:
                    break
                for row in rows:
                    try:
                        plaintext = crypto.decrypt(attr.sealed(row))
                    except crypto.DecryptionError as err:
                        failed.append((row.pk, str(err)))
                        continue
                    attr.store(row, crypto.encrypt(plaintext))
                    row.save(update_fields=[attr.key_id_field, attr.ciphertext_field])
                    done += 1
            self.stdout.write(f"{label}: {done}/{total} re-encrypted")
        return [f"{label} pk={pk}: {message}" for pk, message in failed]

    def _check(self, model, attr, label, primary, report_pending) -> list[str]:
        failures, pending = [], 0
        rows = model.objects.exclude(**{attr.ciphertext_field: ""}).order_by("pk")
        for row in rows.iterator(chunk_size=500):
            sealed = attr.sealed(row)
            try:
                crypto.decrypt(sealed)
            except crypto.DecryptionError as err:
                failures.append(f"{label} pk={row.pk}: {err}")
                continue
            if sealed.key_id != primary:
                pending += 1
                if not report_pending:
                    failures.append(f"{label} pk={row.pk}: still under key {sealed.key_id}")
        if report_pending:
            self.stdout.write(f"{label}: {pending} would be re-encrypted")
        return failures

    def _finish(self, failures: list[str], success: str) -> None:
        if failures:
            for line in failures:
                self.stderr.write(line)
            raise CommandError(f"{len(failures)} value(s) could not be verified; see above")
        self.stdout.write(self.style.SUCCESS(success))
