"""Bearer API-key authentication: `Authorization: Bearer <key>`."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from api.models import ApiKey, hash_key

# Writing last_used_at on every request would make every read a write; once a minute is plenty.
_TOUCH_EVERY = timedelta(minutes=1)


class BearerKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates a Consumer by one of its unrevoked keys; `request.auth` is the ApiKey."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not raw.strip() or " " in raw.strip():
            raise exceptions.AuthenticationFailed("Malformed Authorization header; use 'Bearer <api key>'.")
        key = ApiKey.objects.select_related("consumer").filter(digest=hash_key(raw.strip())).first()
        if key is None or not key.is_active:
            # One message for both: do not tell a caller which keys once existed.
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key.consumer, key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'
