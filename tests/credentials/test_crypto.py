"""Field encryption: ciphertext at rest, key ids, and clear failures."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import override_settings

from integrations import crypto
from integrations.credentials import credential_rotate, credential_value, credential_values_valid
from integrations.models import Credential

SECRET = "sk_live_plaintext_never_stored_4242"


def test_raw_column_holds_no_plaintext(provider):
    credential_rotate(provider=provider, purpose="api_key", value=SECRET)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_credential")
        rows = cursor.fetchall()
    dumped = repr(rows)
    assert SECRET not in dumped
    assert SECRET.encode().hex() not in dumped
    assert credential_value(provider=provider, purpose="api_key") == SECRET


def test_key_id_is_stored_beside_the_ciphertext(provider):
    credential = credential_rotate(provider=provider, purpose="api_key", value=SECRET)
    credential.refresh_from_db()
    assert credential.key_id == crypto.primary_key_id()
    assert len(credential.key_id) == 8


def test_value_under_an_unknown_key_raises_naming_the_key(provider):
    credential = credential_rotate(provider=provider, purpose="api_key", value=SECRET)
    other = Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[other]):
        fresh = Credential.objects.get(pk=credential.pk)
        with pytest.raises(crypto.DecryptionError) as excinfo:
            _ = fresh.value
    assert credential.key_id in str(excinfo.value)
    assert credential.ciphertext not in str(excinfo.value)


def test_tampered_ciphertext_raises_and_is_never_returned(provider):
    credential = credential_rotate(provider=provider, purpose="api_key", value=SECRET)
    Credential.objects.filter(pk=credential.pk).update(ciphertext=credential.ciphertext[:-4] + "AAAA")
    fresh = Credential.objects.get(pk=credential.pk)
    with pytest.raises(crypto.DecryptionError):
        _ = fresh.value


def test_undecryptable_row_is_not_resaved_as_plaintext(provider):
    """Saving a row that cannot be decrypted must not turn ciphertext into the value."""
    credential = credential_rotate(provider=provider, purpose="api_key", value=SECRET)
    with override_settings(FIELD_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        fresh = Credential.objects.get(pk=credential.pk)
        fresh.active_until = None
        fresh.save()
    # Back under the right key the original value is intact.
    assert Credential.objects.get(pk=credential.pk).value == SECRET


def test_first_key_encrypts_and_all_keys_decrypt(provider):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[old_key]):
        first = credential_rotate(provider=provider, purpose="signing_secret", value="one-1")
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, old_key]):
        second = credential_rotate(provider=provider, purpose="api_key", value="two-2")
        assert Credential.objects.get(pk=first.pk).value == "one-1"
        assert Credential.objects.get(pk=second.pk).key_id == crypto.key_id_for(new_key)


def test_rotation_with_grace_keeps_old_secret_valid(provider):
    from datetime import timedelta

    credential_rotate(provider=provider, purpose="webhook_secret", value="whsec_new",
                      grace=timedelta(hours=1))
    assert credential_values_valid(provider=provider, purpose="webhook_secret") == [
        "whsec_new", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    credential_rotate(provider=provider, purpose="webhook_secret", value="whsec_newer")
    # Without grace the previous value stops at once; the one still in its grace stays.
    assert credential_values_valid(provider=provider, purpose="webhook_secret") == [
        "whsec_newer", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]


def test_repr_and_str_of_a_credential_carry_no_secret(provider):
    credential = credential_rotate(provider=provider, purpose="api_key", value=SECRET)
    assert SECRET not in repr(credential) and SECRET not in str(credential)
