"""Field encryption: Fernet under FIELD_ENCRYPTION_KEYS, a short key id stored beside each value.

The first configured key encrypts; every configured key decrypts. The key id lets
`rotate_encryption_key` select what is left to re-encrypt, and lets a failure name
the missing key instead of handing back ciphertext as if it were the value.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class DecryptionError(Exception):
    """A stored value that no configured key can decrypt. Never carries the ciphertext."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    ciphertext: str


def key_id_for(key: str) -> str:
    """8 hex characters that name a key without revealing it."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...]) -> dict[str, Fernet]:
    return {key_id_for(k): Fernet(k) for k in keys}


def keyring() -> dict[str, Fernet]:
    """Configured keys by id, newest first (dicts keep insertion order)."""
    return _keyring(tuple(settings.FIELD_ENCRYPTION_KEYS))


def primary_key_id() -> str:
    return next(iter(keyring()))


def encrypt(plaintext: str) -> Sealed:
    key_id = primary_key_id()
    token = keyring()[key_id].encrypt(plaintext.encode("utf-8"))
    return Sealed(key_id=key_id, ciphertext=token.decode("ascii"))


def decrypt(sealed: Sealed) -> str:
    fernet = keyring().get(sealed.key_id)
    if fernet is None:
        raise DecryptionError(
            f"value was encrypted with key {sealed.key_id}, which is not in "
            "FIELD_ENCRYPTION_KEYS; add that key back (after the newest) and run "
            "manage.py rotate_encryption_key"
        )
    try:
        return fernet.decrypt(sealed.ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        # `from None`: the cause would add nothing and must not drag the token along.
        raise DecryptionError(
            f"value under key {sealed.key_id} failed to decrypt (corrupt or tampered)"
        ) from None


def fingerprint(plaintext: str) -> str:
    """A short keyed digest for recognising a value in the admin, useless for guessing it."""
    digest = hmac.new(settings.SECRET_KEY.encode(), plaintext.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:12]


class EncryptedValue:
    """Model attribute that encrypts on assignment and decrypts on read.

    Declare it next to two plain fields:
        key_id = models.CharField(max_length=16)
        ciphertext = models.TextField()
        value = EncryptedValue("key_id", "ciphertext")
    Models with such attributes are found by `encrypted_models()` for key rotation.
    """

    def __init__(self, key_id_field: str, ciphertext_field: str):
        self.key_id_field = key_id_field
        self.ciphertext_field = ciphertext_field

    def __set_name__(self, owner, name):
        self.name = name
        owner._encrypted_values = {**getattr(owner, "_encrypted_values", {}), name: self}

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        sealed = self.sealed(instance)
        if not sealed.ciphertext:
            return None
        return decrypt(sealed)

    def __set__(self, instance, plaintext: str):
        if not isinstance(plaintext, str) or plaintext == "":
            raise ValueError(f"{self.name} must be a non-empty string")
        self.store(instance, encrypt(plaintext))

    def sealed(self, instance) -> Sealed:
        return Sealed(
            key_id=getattr(instance, self.key_id_field) or "",
            ciphertext=getattr(instance, self.ciphertext_field) or "",
        )

    def store(self, instance, sealed: Sealed) -> None:
        setattr(instance, self.key_id_field, sealed.key_id)
        setattr(instance, self.ciphertext_field, sealed.ciphertext)


def encrypted_models():
    """Every installed model that declares an EncryptedValue."""
    from django.apps import apps

    return [m for m in apps.get_models() if getattr(m, "_encrypted_values", None)]
