"""Authentication schemes, including OAuth2 client credentials shared across threads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time

import pytest
import responses
from responses import matchers

from integrations import shared_state
from integrations.auth import oauth_access_token
from integrations.client import ProviderClient
from integrations.credentials import credential_rotate
from tests.support.local_server import LocalServer, Reply

BASE = "https://provider.test"


@responses.activate
def test_api_key_in_a_named_header(make_provider):
    provider = make_provider(BASE, auth_scheme="api_key_header", auth_header_name="X-Partner-Key")
    responses.get(f"{BASE}/v1/x", json={}, match=[matchers.header_matcher({"X-Partner-Key": provider
                                                                             .credentials.get().value})])

    assert ProviderClient(provider).request("GET", "/v1/x").ok
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_http_basic(make_provider):
    provider = make_provider(BASE, auth_scheme="basic")
    credential_rotate(provider=provider, purpose="basic_username", value="user")
    credential_rotate(provider=provider, purpose="basic_password", value="p@ss:word")
    responses.get(f"{BASE}/v1/x", json={})

    ProviderClient(provider).request("GET", "/v1/x")

    expected = "Basic " + base64.b64encode(b"user:p@ss:word").decode()
    assert responses.calls[0].request.headers["Authorization"] == expected


@responses.activate
def test_hmac_signature_covers_timestamp_and_body(make_provider):
    provider = make_provider(BASE, auth_scheme="hmac")
    credential_rotate(provider=provider, purpose="signing_secret", value="sign-me")
    responses.post(f"{BASE}/v1/x", json={})

    ProviderClient(provider).request("POST", "/v1/x", json={"a": 1}, idempotency_key="k")

    sent = responses.calls[0].request
    timestamp = sent.headers["X-Timestamp"]
    expected = hmac.new(b"sign-me", timestamp.encode() + b"." + sent.body, hashlib.sha256).hexdigest()
    assert sent.headers["X-Signature"] == expected
    assert abs(int(timestamp) - time.time()) < 5
    assert "Authorization" not in sent.headers


@responses.activate
def test_api_version_header_is_sent_when_set(make_provider):
    provider = make_provider(BASE, api_version="2024-06-20")
    responses.get(f"{BASE}/v1/x", json={})

    ProviderClient(provider).request("GET", "/v1/x")

    assert responses.calls[0].request.headers["Stripe-Version"] == "2024-06-20"


def test_a_missing_credential_names_what_to_add(make_provider):
    from integrations.errors import CredentialMissing

    provider = make_provider(BASE, auth_scheme="basic")
    with pytest.raises(CredentialMissing, match="basic_username"):
        ProviderClient(provider).request("GET", "/v1/x")


# --- OAuth2 ---------------------------------------------------------------------------------


class OAuthServer:
    """A provider with a token endpoint (counts token requests) and an API that accepts the
    newest token only."""

    def __init__(self, *, lifetime: int = 3600, hold_token: threading.Event | None = None):
        self.token_requests = 0
        self.issued: list[str] = []
        self.api_tokens: list[str] = []
        self.lifetime = lifetime
        self.hold_token = hold_token
        self.lock = threading.Lock()
        self.reject_next = 0

    def __call__(self, request):
        if request.path == "/oauth/token":
            assert request.body.startswith(b"grant_type=client_credentials")
            assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"client-1:cs_SECRET").decode()
            if self.hold_token:
                self.hold_token.wait(10)
            with self.lock:
                self.token_requests += 1
                token = f"at_{self.token_requests}"
                self.issued.append(token)
            return Reply(200, json={"access_token": token, "expires_in": self.lifetime, "token_type": "bearer"})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self.lock:
            self.api_tokens.append(token)
            if self.reject_next:
                self.reject_next -= 1
                return Reply(401, json={"error": "invalid_token"})
        return Reply(200, json={"ok": True}) if token == self.issued[-1] else Reply(401, json={})


def oauth_provider(make_provider, url):
    provider = make_provider(url, auth_scheme="oauth2_client_credentials", oauth_token_url="/oauth/token")
    credential_rotate(provider=provider, purpose="oauth_client_id", value="client-1")
    credential_rotate(provider=provider, purpose="oauth_client_secret", value="cs_SECRET")
    return provider


def test_oauth_token_is_fetched_once_and_reused(make_provider):
    app = OAuthServer()
    with LocalServer(app) as server:
        provider = oauth_provider(make_provider, server.url)
        client = ProviderClient(provider)

        assert all(client.request("GET", "/v1/x").ok for _ in range(3))
        assert ProviderClient(provider).request("GET", "/v1/x").ok

        assert app.token_requests == 1 and app.api_tokens == ["at_1"] * 4


def test_oauth_token_is_cached_encrypted(make_provider):
    app = OAuthServer()
    with LocalServer(app) as server:
        provider = oauth_provider(make_provider, server.url)
        ProviderClient(provider).request("GET", "/v1/x")

        stored = shared_state.store().get(f"oauth:{provider.slug}:{provider.environment}")
        assert stored and "at_1" not in json.dumps(stored)
        assert set(stored) == {"key_id", "ciphertext"}


def test_oauth_token_is_refreshed_before_it_expires(make_provider, settings):
    settings.INTEGRATIONS_OAUTH_REFRESH_MARGIN = 60
    app = OAuthServer(lifetime=61)  # inside the margin 1 s after it is issued
    with LocalServer(app) as server:
        provider = oauth_provider(make_provider, server.url)
        client = ProviderClient(provider)
        client.request("GET", "/v1/x")
        assert app.token_requests == 1

        app.lifetime = 3600
        key = f"oauth:{provider.slug}:{provider.environment}"
        # The cached token now has 59 s left (< 60 s margin): the next call refreshes it.
        from integrations.auth import _decode
        from integrations.crypto import encrypt

        token, expires_at = _decode(shared_state.store().get(key))
        sealed = encrypt(json.dumps({"access_token": token, "expires_at": time.time() + 59}))
        shared_state.store().update(key, lambda cur: ({"key_id": sealed.key_id, "ciphertext": sealed.ciphertext},
                                                      None), ttl=59)
        assert client.request("GET", "/v1/x").ok
        assert app.token_requests == 2 and app.api_tokens[-1] == "at_2"


def test_a_401_drops_the_token_and_retries_once_with_a_new_one(make_provider):
    app = OAuthServer()
    with LocalServer(app) as server:
        provider = oauth_provider(make_provider, server.url)
        client = ProviderClient(provider)
        assert client.request("GET", "/v1/x").ok
        app.reject_next = 1  # the provider revoked at_1

        result = client.request("POST", "/v1/x", json={})  # no idempotency key: a 401 is still safe

        assert result.ok and result.attempts == 2
        assert app.token_requests == 2 and app.api_tokens[-2:] == ["at_1", "at_2"]


def test_a_second_401_is_not_retried_again(make_provider):
    app = OAuthServer()
    with LocalServer(app) as server:
        provider = oauth_provider(make_provider, server.url)
        app.reject_next = 5

        result = ProviderClient(provider).request("GET", "/v1/x")

        assert result.error_code == "HTTP_401" and result.attempts == 2 and app.token_requests == 2


def test_token_endpoint_failure_is_a_clear_result(make_provider):
    with LocalServer(lambda r: Reply(401, json={"error": "invalid_client"})) as server:
        provider = oauth_provider(make_provider, server.url)

        result = ProviderClient(provider).request("GET", "/v1/x")

        assert result.error_code == "HTTP_401" and not result.ok and server.count == 1


def test_waiters_give_up_at_their_deadline_while_another_process_refreshes(make_provider):
    provider = oauth_provider(make_provider, "http://127.0.0.1:9")
    shared_state.store().add(f"oauth:{provider.slug}:{provider.environment}:refresh", "someone-else", ttl=30)
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    from integrations.auth import TokenUnavailable

    with pytest.raises(TokenUnavailable):
        oauth_access_token(provider=provider, fetch=lambda: pytest.fail("must not fetch"), deadline_at=1.0,
                           clock=lambda: now[0], sleep=sleep)


@pytest.mark.postgres
def test_twenty_threads_with_an_expired_token_make_exactly_one_token_request(make_provider, transactional_db, shared_store):
    hold = threading.Event()
    app = OAuthServer(hold_token=hold)
    with LocalServer(app) as server:
        provider = oauth_provider(make_provider, server.url)
        # An expired token is in the shared store.
        from integrations.crypto import encrypt

        sealed = encrypt(json.dumps({"access_token": "at_old", "expires_at": time.time() - 5}))
        shared_state.store().update(f"oauth:{provider.slug}:{provider.environment}",
                                    lambda cur: ({"key_id": sealed.key_id, "ciphertext": sealed.ciphertext}, None),
                                    ttl=60)
        barrier = threading.Barrier(20)
        results = []

        def worker():
            from django.db import connections

            try:
                client = ProviderClient(provider)
                barrier.wait(10)
                result = client.request("GET", "/v1/x")
                results.append(result.error_code or result.ok)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        # Hold the token answer until the first token request is in: everyone else is waiting.
        assert server.wait_for_requests(1, timeout=10)
        hold.set()
        for t in threads:
            t.join(20)

        assert results == [True] * 20
        assert app.token_requests == 1
        assert app.api_tokens == ["at_1"] * 20


def test_oauth_scheme_without_token_url_is_refused_by_validation(make_provider):
    from django.core.exceptions import ValidationError

    provider = make_provider(BASE)
    provider.auth_scheme = "oauth2_client_credentials"
    with pytest.raises(ValidationError, match="token endpoint"):
        provider.full_clean()
    provider.oauth_token_url = "/oauth/token"
    provider.full_clean()
