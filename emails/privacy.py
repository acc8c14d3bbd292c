"""Recipient hashes: what the admin, the API and the logs show instead of an address."""

from __future__ import annotations

from django.utils.crypto import salted_hmac


def recipient_hash(address: str) -> str:
    """A keyed hash of an address (case-insensitive): the same address always gives the same
    16 hex digits, yet nobody without the SECRET_KEY can test guesses against it."""
    if not address:
        return ""
    return salted_hmac("emails.recipient_hash", address.strip().lower(), algorithm="sha256").hexdigest()[:16]
