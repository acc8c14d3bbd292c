"""OAuth2 client credentials: asking the provider's token endpoint for an access token.

Caching, sharing and refreshing the token across processes is `integrations.auth`'s job;
this module only makes the token request, with the client's transport and deadline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlencode

import requests

from integrations import auth, records
from integrations.client import transport
from integrations.client.results import EBADRESPONSE, ECONN
from integrations.models import AuthScheme


class _SchemeView:
    """A provider seen with another auth scheme (the token request uses HTTP basic)."""

    def __init__(self, provider, scheme):
        self._provider, self.auth_scheme = provider, scheme

    def __getattr__(self, name):
        return getattr(self._provider, name)


def fetch_token(*, session: requests.Session, provider, credential: Callable[[str], str], deadline_at: float,
                clock: Callable[[], float]) -> tuple[str, float]:
    """(access token, lifetime in seconds) from the token endpoint: client credentials grant,
    client id and secret in HTTP basic. Raises auth.TokenUnavailable with a contract code."""
    if not provider.oauth_token_url:
        raise auth.TokenUnavailable(f"provider {provider.slug!r} has no OAuth token URL", code=ECONN)
    url = provider.oauth_token_url
    if not url.startswith(("http://", "https://")):
        url = provider.base_url.rstrip("/") + "/" + url.lstrip("/")
    form = {"grant_type": "client_credentials"}
    if provider.oauth_scope:
        form["scope"] = provider.oauth_scope
    headers = {"Accept": "application/json", "User-Agent": transport.USER_AGENT,
               "Content-Type": "application/x-www-form-urlencoded"}
    outgoing = auth.Outgoing(method="POST", path="", body=b"", headers=headers)
    basic = {"basic_username": credential("oauth_client_id"),
             "basic_password": credential("oauth_client_secret")}.__getitem__
    auth.apply_auth(provider=_SchemeView(provider, AuthScheme.BASIC), outgoing=outgoing, credential=basic)
    started = clock()
    answer = transport.exchange(session, "POST", url, params=None, headers=headers,
                                body=urlencode(form).encode(), connect_timeout=provider.connect_timeout,
                                read_timeout=provider.read_timeout, deadline_at=deadline_at, clock=clock)
    records.log_attempt(provider=provider.slug, operation="oauth.token", method="POST",
                        path=records.safe_path(url.split("://", 1)[-1].partition("/")[2] or "/")[0],
                        query_keys=[], attempt=1, status=answer.status,
                        error_code=answer.error_code or (None if answer.status == 200 else f"HTTP_{answer.status}"),
                        latency_ms=(clock() - started) * 1000)
    if answer.error_code:
        raise auth.TokenUnavailable(f"token endpoint: {answer.message}", code=answer.error_code)
    if answer.status != 200:
        raise auth.TokenUnavailable(f"token endpoint answered HTTP {answer.status}",
                                    code=f"HTTP_{answer.status}", status=answer.status)
    try:
        doc = json.loads(answer.body)
        return str(doc["access_token"]), float(doc.get("expires_in") or 3600)
    except (ValueError, KeyError, TypeError):
        raise auth.TokenUnavailable("token endpoint answer has no access_token", code=EBADRESPONSE) from None
