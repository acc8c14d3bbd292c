"""Authentication schemes of the outbound client, chosen per provider (Provider.auth_scheme).

Each scheme adds headers to an outgoing request from the provider's current-environment
credentials. OAuth2 client-credentials tokens are cached encrypted in the shared store,
refreshed by one process at a time before they expire, and dropped on a 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.views.decorators.debug import sensitive_variables

from integrations import shared_state
from integrations.conf import integration_settings
from integrations.crypto import Sealed, decrypt, encrypt
from integrations.errors import IntegrationError
from integrations.kinds import get_kind
from integrations.models import AuthScheme

# Generic defaults, for what neither the provider nor its kind (integrations/kinds/) says.
DEFAULT_SCHEME = AuthScheme.BEARER
DEFAULT_API_KEY_HEADER = "X-API-Key"
DEFAULT_HMAC_HEADERS = ("X-Signature", "X-Timestamp")  # (signature header, timestamp header)
DEFAULT_API_VERSION_HEADER = "X-API-Version"
# Header names whose values can be secrets or sessions: never logged, never cached.
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-signature",
                               "x-hub-signature-256", "cookie", "set-cookie"})


class TokenUnavailable(IntegrationError):
    """No OAuth2 access token could be had within the deadline; `.code` is the contract code."""

    def __init__(self, message: str, *, code: str = "ETIMEDOUT", status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass
class Outgoing:
    """The parts of a request a scheme may sign or add headers to."""

    method: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _declared(provider, attribute: str):
    """What the provider's kind declares; None for a blank kind or one no longer listed."""
    try:
        return getattr(get_kind(provider.kind), attribute)
    except LookupError:
        return None


def scheme_for(provider) -> str:
    """The provider's auth scheme, resolving blank to its kind's default."""
    return provider.auth_scheme or _declared(provider, "auth_scheme") or DEFAULT_SCHEME


def api_version_header(provider) -> str:
    return provider.api_version_header or _declared(provider, "api_version_header") or DEFAULT_API_VERSION_HEADER


def hmac_headers(provider) -> tuple[str, str]:
    """(signature header, timestamp header) of the HMAC scheme for this provider."""
    return _declared(provider, "hmac_headers") or DEFAULT_HMAC_HEADERS


@sensitive_variables()  # every local here is a secret or carries one
def apply_auth(*, provider, outgoing: Outgoing, credential: Callable[[str], str],
               oauth_token: Callable[[], str] | None = None) -> str | None:
    """Add the provider's authentication to `outgoing`. Returns the OAuth2 token used, if any.

    `credential(purpose)` returns a current plaintext credential; `oauth_token()` a valid
    access token (see `oauth_access_token`).
    """
    scheme = scheme_for(provider)
    headers = outgoing.headers
    if scheme == AuthScheme.BEARER:
        headers["Authorization"] = f"Bearer {credential('api_key')}"
    elif scheme == AuthScheme.API_KEY_HEADER:
        headers[provider.auth_header_name or DEFAULT_API_KEY_HEADER] = credential("api_key")
    elif scheme == AuthScheme.BASIC:
        pair = f"{credential('basic_username')}:{credential('basic_password')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    elif scheme == AuthScheme.OAUTH2_CLIENT_CREDENTIALS:
        token = oauth_token()
        headers["Authorization"] = f"Bearer {token}"
        return token
    elif scheme == AuthScheme.HMAC:
        signature_header, timestamp_header = hmac_headers(provider)
        timestamp = str(int(time.time()))
        headers[timestamp_header] = timestamp
        headers[signature_header] = hmac_signature(credential("signing_secret"), timestamp, outgoing.body)
    return None


def hmac_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of "<timestamp>.<body>" under the signing secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


# --- OAuth2 client credentials ----------------------------------------------------------

def _token_key(provider) -> str:
    return f"oauth:{provider.slug}:{provider.environment}"


def _read_token(provider) -> tuple[str, float] | None:
    return _decode(shared_state.store().get(_token_key(provider)))


def _decode(raw: dict | None) -> tuple[str, float] | None:
    if not raw:
        return None
    try:
        doc = json.loads(decrypt(Sealed(key_id=raw["key_id"], ciphertext=raw["ciphertext"])))
    except Exception:  # noqa: BLE001 - an unreadable cached token (key rotated away) is refetched
        return None
    return doc["access_token"], float(doc["expires_at"])


def oauth_access_token(*, provider, fetch: Callable[[], tuple[str, float]], deadline_at: float,
                       clock: Callable[[], float] = time.monotonic,
                       sleep: Callable[[float], None] = time.sleep) -> str:
    """A valid access token for `provider`, from the shared store or freshly fetched.

    `fetch()` asks the token endpoint and returns (access token, lifetime in seconds). A
    token with less than INTEGRATIONS_OAUTH_REFRESH_MARGIN seconds left is refreshed; only
    the process holding the refresh claim fetches, others keep using a still-valid token or
    wait for the new one (until `deadline_at` on `clock`).
    """
    store = shared_state.store()
    margin = float(integration_settings.OAUTH_REFRESH_MARGIN)
    lock_key = _token_key(provider) + ":refresh"
    while True:
        cached = _read_token(provider)
        now = time.time()
        if cached and cached[1] - margin > now:
            return cached[0]
        claim = uuid.uuid4().hex
        remaining = deadline_at - clock()
        if remaining > 0 and store.add(lock_key, claim, ttl=max(1.0, min(remaining, 60.0))):
            try:
                cached = _read_token(provider)  # refreshed between our read and our claim?
                if cached and cached[1] - margin > time.time():
                    return cached[0]
                token, lifetime = fetch()
                expires_at = time.time() + lifetime
                sealed = encrypt(json.dumps({"access_token": token, "expires_at": expires_at}))
                value = {"key_id": sealed.key_id, "ciphertext": sealed.ciphertext}
                store.update(_token_key(provider), lambda _cur, v=value: (v, None), ttl=max(1.0, lifetime))
                return token
            finally:
                shared_state.release(lock_key, claim)
        if cached and cached[1] > now:
            return cached[0]  # still valid: use it while another process refreshes
        if remaining <= 0:
            raise TokenUnavailable("timed out waiting for an OAuth2 access token")
        # Another process is fetching the token: look again shortly.
        sleep(min(0.02, remaining))


def oauth_drop_token(*, provider, token: str) -> None:
    """Forget the cached token after the provider refused it (only if it is still that one,
    so a token another process just refreshed survives)."""

    def drop(current):
        if not current:
            return shared_state.KEEP, None
        cached = _decode(current)
        return (None, None) if cached is None or cached[0] == token else (shared_state.KEEP, None)

    shared_state.store().update(_token_key(provider), drop, ttl=1)
