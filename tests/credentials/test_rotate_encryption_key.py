"""manage.py rotate_encryption_key end to end: A -> (B, A) -> rotate -> B only."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from integrations import crypto
from integrations.credentials import credential_rotate
from integrations.models import Credential, Provider

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@pytest.fixture
def values_under_a(db):
    provider = Provider.objects.create(slug="p", name="P", kind="stripe", base_url="https://api.example.test")
    values = {}
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_A]):
        for i in range(7):
            credential = credential_rotate(provider=provider, purpose=["api_key", "webhook_secret"][i % 2],
                                           value=f"secret-value-{i}")
            values[credential.pk] = f"secret-value-{i}"
    return values


def rotate(*args):
    out = io.StringIO()
    call_command("rotate_encryption_key", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_rotation_end_to_end(values_under_a):
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        output = rotate("--batch-size", "3")
        assert "7/7 re-encrypted" in output
        assert "every value decrypts" in output
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B]):
        for pk, value in values_under_a.items():
            row = Credential.objects.get(pk=pk)
            assert row.key_id == crypto.key_id_for(KEY_B)
            assert row.value == value


def test_dry_run_changes_nothing(values_under_a):
    before = dict(Credential.objects.values_list("pk", "ciphertext"))
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        output = rotate("--dry-run")
    assert "7 would be re-encrypted" in output
    assert dict(Credential.objects.values_list("pk", "ciphertext")) == before


def test_interrupted_rotation_resumes(values_under_a, monkeypatch):
    """A crash mid-run leaves committed batches done; the next run finishes the rest."""
    real_encrypt = crypto.encrypt
    calls = {"n": 0}

    def failing_encrypt(plaintext):
        calls["n"] += 1
        if calls["n"] == 4:  # second batch of 3: first batch committed, this one rolls back
            raise KeyboardInterrupt
        return real_encrypt(plaintext)

    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        monkeypatch.setattr(crypto, "encrypt", failing_encrypt)
        with pytest.raises(KeyboardInterrupt):
            rotate("--batch-size", "3")
        monkeypatch.setattr(crypto, "encrypt", real_encrypt)
        done = Credential.objects.filter(key_id=crypto.key_id_for(KEY_B)).count()
        assert done == 3
        output = rotate("--batch-size", "3")
        assert "4 to re-encrypt" in output
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B]):
        assert {pk: Credential.objects.get(pk=pk).value for pk in values_under_a} == values_under_a


def test_rerun_after_success_has_nothing_to_do(values_under_a):
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        rotate()
        assert "0 to re-encrypt" in rotate()


def test_value_under_a_missing_key_fails_loudly(values_under_a):
    """Rotating with key A already dropped: the command names the rows and exits non-zero."""
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B]):
        with pytest.raises(CommandError, match="could not be verified"):
            rotate()
    # Nothing was destroyed: back with A, everything still decrypts.
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        assert {pk: Credential.objects.get(pk=pk).value for pk in values_under_a} == values_under_a
