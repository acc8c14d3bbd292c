"""The resilient outbound client: every call to a provider goes through `ProviderClient`.

    client = ProviderClient(provider)
    result = client.request("POST", "/v1/charges", data={...}, idempotency_key=key,
                            operation="charge.create")
    if not result.ok: ...            # or result.raise_for_error()

Per call: the provider's policy (re-read from its row), an optional read-through cache,
then attempts until one succeeds, fails for good, or the deadline comes. Per attempt: the
shared circuit breaker, a token from the shared rate limit, authentication, one HTTP
exchange under separate connect/read timeouts, a log line and metrics. Transient failures
(connection error, timeout, 408, 429, 5xx) are retried with full-jitter backoff or the
provider's Retry-After; a POST/PATCH only when it has an idempotency key. See
docs/outbound-client.md.
"""

from __future__ import annotations

import json as jsonlib
import logging
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from config import request_id
from integrations import auth, circuit, metrics, records, response_cache, shared_state
from integrations.conf import setting
from integrations.credentials import credential_value
from integrations.errors import (  # noqa: F401 - re-exported: callers import them from here
    ProviderBadResponse,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)
from integrations.models import AuthScheme, Provider
from integrations.ratelimit import RateLimitExceeded, rate_limit_acquire

logger = logging.getLogger(__name__)

ECONN, ETIMEDOUT, CIRCUIT_OPEN, RATE_LIMITED = "ECONN", "ETIMEDOUT", "CIRCUIT_OPEN", "RATE_LIMITED"
EBADRESPONSE, PROVIDER_DISABLED = "EBADRESPONSE", "PROVIDER_DISABLED"
# Codes that mean "not reached in time / outcome unknown" (ProviderUnavailable).
UNAVAILABLE_CODES = frozenset({ECONN, ETIMEDOUT, CIRCUIT_OPEN, RATE_LIMITED, PROVIDER_DISABLED})
RETRYABLE_STATUSES = frozenset({408, 429})
UNSAFE_WITHOUT_KEY = frozenset({"POST", "PATCH"})
USER_AGENT = "provider-gateway/1.0"


@dataclass
class CallResult:
    """The outcome of one call (all its attempts). `ok` is a 2xx with a readable answer.

    `data` is the parsed JSON body whenever the answer had one, error answers included
    (adapters read decline details from it). `error_code` is None when ok, else a contract
    code: ECONN, ETIMEDOUT, HTTP_<status>, CIRCUIT_OPEN, RATE_LIMITED, EBADRESPONSE (or
    PROVIDER_DISABLED). `retry_after` is the wait the provider (or the rate limit) asked for.
    """

    ok: bool
    status: int | None = None
    data: Any = None
    error_code: str | None = None
    message: str = ""
    attempts: int = 0
    latency_ms: float = 0.0
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=CaseInsensitiveDict)
    provider: str = ""
    cached: bool = False
    text: str = ""

    def raise_for_error(self) -> CallResult:
        """Return self when ok; else raise ProviderUnavailable (not reached in time, outcome
        unknown), ProviderBadResponse (unreadable answer) or ProviderRejected (a 4xx)."""
        if self.ok:
            return self
        if self.error_code == EBADRESPONSE:
            raise ProviderBadResponse(self)
        if self.error_code in UNAVAILABLE_CODES or self.status is None:
            raise ProviderUnavailable(self)
        if self.status in RETRYABLE_STATUSES or self.status >= 500:
            raise ProviderUnavailable(self)
        if 400 <= self.status < 500:
            raise ProviderRejected(self)
        raise ProviderBadResponse(self)  # 1xx/3xx: redirects are never followed


@dataclass
class _Exchange:
    """One HTTP attempt's raw outcome."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=CaseInsensitiveDict)
    body: bytes = b""
    error_code: str | None = None
    message: str = ""


def _new_session() -> requests.Session:
    session = requests.Session()
    # No proxies or .netrc from the environment (they could add credentials or send traffic
    # elsewhere), and retries are ours alone.
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def form_encode(data: Mapping[str, Any]) -> str:
    """Form-encode a dict, nested the way Stripe-like APIs expect: metadata[order]=1, items[0]=a."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}[{key}]" if prefix else str(key), item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        elif value is None:
            return
        elif isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        else:
            pairs.append((prefix, str(value)))

    walk("", data)
    return urlencode(pairs)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date. None if absent
    or unreadable; never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(*, retry: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**retry)), `retry` counting from 0 for the
    wait before the second attempt."""
    return rng.uniform(0, min(cap, base * 2**retry))


def _is_timeout(err: BaseException) -> bool:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        # urllib3's NewConnectionError (refused, unreachable) subclasses ConnectTimeoutError.
        if isinstance(err, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
            return False
        if isinstance(err, urllib3.exceptions.MaxRetryError) and err.reason is not None:
            err = err.reason
            continue
        if isinstance(err, urllib3.exceptions.TimeoutError | socket.timeout | TimeoutError):
            return True
        if err.args and isinstance(err.args[0], BaseException):
            err = err.args[0]
            continue
        err = err.__cause__ or err.__context__
    return False


class ProviderClient:
    """Calls one provider under its row's policy. Cheap to create; one per thread is safest
    (it holds a requests.Session with a connection pool).

    `sleep`, `clock` (monotonic seconds) and `rng` can be injected so tests control waits.
    """

    def __init__(self, provider: Provider, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None):
        self._provider = provider
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._loaded_at = clock()
        self._credentials: dict[str, str] = {}
        self.session = session or _new_session()

    # --- policy and credentials -----------------------------------------------------------

    @property
    def provider(self) -> Provider:
        """The provider row, re-read when older than INTEGRATIONS_POLICY_REFRESH_SECONDS, so an
        admin edit (or a credential rotation) reaches long-lived clients without a restart."""
        if self._clock() - self._loaded_at >= float(setting("INTEGRATIONS_POLICY_REFRESH_SECONDS")):
            self._provider = Provider.objects.get(pk=self._provider.pk)
            self._credentials.clear()
            self._loaded_at = self._clock()
        return self._provider

    def _credential(self, purpose: str) -> str:
        if purpose not in self._credentials:
            self._credentials[purpose] = credential_value(provider=self._provider, purpose=purpose)
        return self._credentials[purpose]

    # --- the call -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json: Any = None, data: Mapping[str, Any] | None = None,
                params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                idempotency_key: str | None = None, operation: str = "", deadline: float | None = None,
                cacheable: bool = False, cache_key_parts: Any = None, expect_json: bool = True) -> CallResult:
        """Make one call to the provider, with retries, and return its CallResult (never raises
        for provider trouble; see CallResult.raise_for_error).

        `path` is relative to the provider's base URL. `json=` sends a JSON body, `data=` a
        form-encoded one. `idempotency_key` goes out as Idempotency-Key on every attempt and
        is what allows retrying a POST/PATCH. `deadline` (seconds, default the provider's)
        bounds the whole call. A GET with `cacheable=True` is answered from the shared cache
        when it can (keyed on `cache_key_parts`, else the params, normalised).
        """
        started = self._clock()
        provider = self.provider
        method = method.upper()
        log_path, query_keys = records.safe_path(path, params)
        operation = operation or f"{method} {log_path}"  # never the query string: values can be secret

        if not provider.enabled:
            result = CallResult(ok=False, error_code=PROVIDER_DISABLED, provider=provider.slug,
                                message=f"provider {provider.slug!r} is disabled")
            return self._finish(result, provider, operation, method, log_path, started)

        cache_key = None
        if cacheable and method == "GET" and provider.cache_ttl > 0:
            cache_key = response_cache.cache_key(provider=provider, path=path, params=params,
                                                 key_parts=cache_key_parts)
            hit = response_cache.cache_get(cache_key)
            metrics.cache_total.labels(provider.slug, "hit" if hit else "miss").inc()
            if hit:
                return CallResult(ok=True, status=hit["status"], data=hit["data"], provider=provider.slug,
                                  headers=CaseInsensitiveDict(hit["headers"]), cached=True,
                                  latency_ms=(self._clock() - started) * 1000)

        body, content_type = b"", None
        if json is not None:
            body, content_type = jsonlib.dumps(json, cls=DjangoJSONEncoder, separators=(",", ":")).encode(), \
                "application/json"
        elif data is not None:
            body, content_type = form_encode(data).encode(), "application/x-www-form-urlencoded"
        base_headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if content_type:
            base_headers["Content-Type"] = content_type
        if provider.api_version:
            base_headers[auth.api_version_header(provider)] = provider.api_version
        if request_id.current():
            base_headers["X-Request-ID"] = request_id.current()
        base_headers.update(headers or {})
        if idempotency_key:
            base_headers["Idempotency-Key"] = idempotency_key

        deadline_at = started + (provider.deadline if deadline is None else deadline)
        url = provider.base_url.rstrip("/") + "/" + path.lstrip("/")
        result = self._attempts(provider, method, url, params, body, base_headers, idempotency_key,
                                operation, log_path, query_keys, deadline_at, expect_json)
        result = self._finish(result, provider, operation, method, log_path, started)
        if cache_key and result.ok:
            kept = {k: v for k, v in result.headers.items() if k.lower() not in auth.SENSITIVE_HEADERS}
            response_cache.cache_put(cache_key, status=result.status, data=result.data, headers=kept,
                                     ttl=provider.cache_ttl)
        return result

    # Error reports (and DEBUG pages) must not show the headers these frames build.
    @sensitive_variables("headers", "token", "outgoing", "base_headers")
    def _attempts(self, provider, method, url, params, body, base_headers, idempotency_key, operation,
                  log_path, query_keys, deadline_at, expect_json) -> CallResult:
        slug = provider.slug
        attempt = 0
        max_attempts = provider.max_attempts
        reauthenticated = False
        while True:
            attempt += 1
            remaining = deadline_at - self._clock()
            # The rate-limit token and the circuit's state come in one shared-state round trip,
            # or none: a token from this process's leased reserve and a fresh local copy of a
            # closed circuit (see ratelimit.py and circuit.py for the bounds). A token taken
            # for a call the circuit then refuses is lost: harmless, an open circuit sends nothing.
            rate_limited, waited, shared = None, 0.0, True
            try:
                also_get = circuit.circuit_key(slug) if circuit.circuit_needs_read(provider=provider) else None
                waited, raw_circuit = rate_limit_acquire(provider=provider, max_wait=max(0.0, remaining),
                                                         sleep=self._sleep, also_get=also_get)
                if waited:
                    raw_circuit = shared_state.UNREAD  # read before the wait: look again
                permit = circuit.circuit_permit(provider=provider, probe_ttl=max(remaining, 1.0), raw=raw_circuit)
            except RateLimitExceeded as err:
                rate_limited = err
                permit = circuit.circuit_permit(provider=provider, probe_ttl=max(remaining, 1.0), raw=err.other)
            except Exception:  # noqa: BLE001 - see below
                # The shared store (Redis or the database) is unreachable: fail open. The call
                # goes out without the breaker and the client-side limit rather than failing a
                # request the provider could serve; its own limits and 429s still apply.
                logger.warning("shared state unavailable: calling without circuit breaker and rate limit",
                               extra={"provider": slug}, exc_info=True)
                shared, permit = False, circuit.Permit()
            if permit is None:
                records.log_attempt(provider=slug, operation=operation, method=method, path=log_path,
                                    query_keys=query_keys, attempt=attempt, status=None,
                                    error_code=CIRCUIT_OPEN, latency_ms=0)
                return CallResult(ok=False, error_code=CIRCUIT_OPEN, attempts=attempt - 1, provider=slug,
                                  message=f"circuit for {slug!r} is open: failing fast")
            if rate_limited is not None:
                self._record_outcome(provider, permit, circuit.NEUTRAL, None)
                metrics.rate_limited_total.labels(slug).inc()
                return CallResult(ok=False, error_code=RATE_LIMITED, attempts=attempt - 1, provider=slug,
                                  retry_after=rate_limited.wait,
                                  message="client-side rate limit: no token within the deadline")
            if waited:
                metrics.rate_limit_wait_seconds.labels(slug).inc(waited)

            headers = dict(base_headers)
            outgoing = auth.Outgoing(method=method, path=log_path, body=body, headers=headers)
            try:
                token = auth.apply_auth(provider=provider, outgoing=outgoing, credential=self._credential,
                                        oauth_token=lambda: self._oauth_token(provider, deadline_at))
            except auth.TokenUnavailable as err:
                self._record_outcome(provider, permit, circuit.NEUTRAL, None)
                return CallResult(ok=False, error_code=err.code, status=err.status, attempts=attempt,
                                  provider=slug, message=str(err))
            except BaseException:
                self._record_outcome(provider, permit, circuit.NEUTRAL, None)
                raise

            attempt_started = self._clock()
            exchange = self._exchange(provider, method, url, params, headers, body, deadline_at)
            latency_ms = (self._clock() - attempt_started) * 1000
            result = self._result(exchange, expect_json, slug, attempt)
            outcome = self._circuit_outcome(exchange, result)
            changed = self._record_outcome(provider, permit, outcome, result.error_code) if shared else None
            if changed:
                metrics.circuit_transitions_total.labels(slug, changed).inc()
                metrics.circuit_state.labels(slug).set(2 if changed == circuit.OPEN else 0)
                logger.warning("circuit %s", changed, extra={"provider": slug, "circuit_state": changed})
            metrics.attempts_total.labels(slug, result.error_code or "ok").inc()

            # What next: done, re-authenticate once, or wait and retry.
            retry_in, stop = self._next_step(provider, method, idempotency_key, result, exchange, attempt,
                                             max_attempts, deadline_at)
            if (exchange.status == 401 and token and not reauthenticated):
                auth.oauth_drop_token(provider=provider, token=token)
                reauthenticated, retry_in, stop = True, 0.0, None
            records.log_attempt(provider=slug, operation=operation, method=method, path=log_path,
                                query_keys=query_keys, attempt=attempt, status=exchange.status,
                                error_code=result.error_code, latency_ms=latency_ms, retry_in=retry_in)
            if stop is not None:
                return stop
            if retry_in is None:
                return result
            if exchange.status != 401:
                metrics.retries_total.labels(slug).inc()
            if retry_in > 0:
                self._sleep(retry_in)

    def _next_step(self, provider, method, idempotency_key, result, exchange, attempt, max_attempts,
                   deadline_at) -> tuple[float | None, CallResult | None]:
        """(seconds to wait before retrying or None to stop with `result`, or a different
        result to stop with at once)."""
        status = exchange.status
        transient = exchange.error_code in (ECONN, ETIMEDOUT) or (
            status is not None and (status in RETRYABLE_STATUSES or status >= 500))
        if result.ok or not transient:
            return None, None
        if method in UNSAFE_WITHOUT_KEY and not idempotency_key:
            return None, None  # the provider may have acted: only a key makes a retry safe
        told = result.retry_after
        left = deadline_at - self._clock()
        if told is not None:
            if status == 429 and min(told, float(setting("INTEGRATIONS_RETRY_AFTER_MAX"))) > left:
                # Waiting would pass the deadline: end now and say how long the provider asked
                # for, so a background task can reschedule instead of sleeping.
                metrics.rate_limited_total.labels(provider.slug).inc()
                return None, CallResult(
                    ok=False, status=status, data=result.data, error_code=RATE_LIMITED, attempts=attempt,
                    retry_after=told, headers=result.headers, provider=provider.slug, text=result.text,
                    message=f"provider asked to retry after {told:.1f}s, past the deadline")
        if attempt >= max_attempts:
            return None, None
        if told is not None:
            delay = min(told, float(setting("INTEGRATIONS_RETRY_AFTER_MAX")))
        else:
            delay = backoff_delay(retry=attempt - 1, base=provider.backoff_base, cap=provider.backoff_max,
                                  rng=self._rng)
        if delay >= left:
            return None, None
        return delay, None

    @staticmethod
    def _record_outcome(provider, permit, outcome, error_code) -> str | None:
        try:
            return circuit.circuit_record(provider=provider, permit=permit, outcome=outcome, error=error_code or "")
        except Exception:  # noqa: BLE001 - the answer is already here; losing one count is the lesser harm
            logger.warning("could not update the circuit state", extra={"provider": provider.slug}, exc_info=True)
            return None

    @staticmethod
    def _circuit_outcome(exchange: _Exchange, result: CallResult) -> str:
        if exchange.error_code is not None or result.error_code == EBADRESPONSE:
            return circuit.FAILURE
        if exchange.status == 408 or exchange.status >= 500:
            return circuit.FAILURE
        if exchange.status == 429:
            return circuit.NEUTRAL
        return circuit.SUCCESS  # answered: 2xx-4xx show the provider is up

    # --- one HTTP exchange ----------------------------------------------------------------

    @sensitive_variables("headers")
    def _exchange(self, provider, method, url, params, headers, body, deadline_at) -> _Exchange:
        remaining = deadline_at - self._clock()
        if remaining <= 0:
            return _Exchange(error_code=ETIMEDOUT, message="deadline passed before the attempt")
        timeout = (min(provider.connect_timeout, remaining), min(provider.read_timeout, remaining))
        try:
            response = self.session.request(method, url, params=params, headers=headers, data=body or None,
                                            timeout=timeout, allow_redirects=False, stream=True)
        except requests.exceptions.Timeout as err:
            kind = "connect" if isinstance(err, requests.exceptions.ConnectTimeout) else "read"
            return _Exchange(error_code=ETIMEDOUT, message=f"{kind} timed out")
        except requests.exceptions.InvalidHeader:
            # Checked before any byte is sent, like a header that cannot be encoded below.
            return _Exchange(error_code=ECONN, message="request not sent: a header value is invalid "
                                                        "(check the provider's credentials)")
        except requests.exceptions.RequestException as err:
            if _is_timeout(err):
                return _Exchange(error_code=ETIMEDOUT, message="timed out")
            return _Exchange(error_code=ECONN, message=f"connection failed: {type(err).__name__}")
        except UnicodeError:
            # http.client encodes headers as Latin-1; a stored secret outside it (credential
            # values are checked to be ASCII, but rows may predate that) must not be a 500.
            return _Exchange(error_code=ECONN, message="request not sent: a header value is not Latin-1 "
                                                        "(check the provider's credentials)")
        try:
            limit = int(setting("INTEGRATIONS_MAX_RESPONSE_BYTES"))
            chunks, size = [], 0
            while True:
                # read1: whatever has arrived (up to 64 KiB), so the deadline is checked between
                # reads; read(n) would block until n bytes came, however slowly.
                chunk = response.raw.read1(65536, decode_content=True)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    return _Exchange(status=response.status_code, headers=response.headers,
                                     error_code=EBADRESPONSE, message=f"answer larger than {limit} bytes")
                if self._clock() > deadline_at:
                    # The read timeout applies per read: a server trickling bytes is cut off here.
                    return _Exchange(error_code=ETIMEDOUT, message="deadline passed while reading the answer")
            response._content = b"".join(chunks)
            response._content_consumed = True
        except Exception as err:  # noqa: BLE001 - any failure while reading is a broken exchange
            if _is_timeout(err):
                return _Exchange(error_code=ETIMEDOUT, message="read timed out")
            return _Exchange(error_code=ECONN, message=f"connection broke while reading: {type(err).__name__}")
        finally:
            response.close()
        return _Exchange(status=response.status_code, headers=response.headers, body=response._content)

    @staticmethod
    def _result(exchange: _Exchange, expect_json: bool, slug: str, attempt: int) -> CallResult:
        if exchange.status is None or (exchange.error_code and exchange.error_code != EBADRESPONSE):
            return CallResult(ok=False, error_code=exchange.error_code, message=exchange.message,
                              attempts=attempt, provider=slug)
        status = exchange.status
        common = {"status": status, "attempts": attempt, "provider": slug, "headers": exchange.headers}
        if exchange.error_code == EBADRESPONSE:
            return CallResult(ok=False, error_code=EBADRESPONSE, message=exchange.message, **common)
        text = exchange.body.decode("utf-8", errors="replace")
        data, readable = None, True
        if exchange.body.strip():
            try:
                data = jsonlib.loads(exchange.body)
            except ValueError:
                readable = not expect_json
        retry_after = parse_retry_after(exchange.headers.get("Retry-After"))
        if 200 <= status < 300:
            if not readable:
                return CallResult(ok=False, error_code=EBADRESPONSE, text=text[:1000], retry_after=retry_after,
                                  message=f"HTTP {status} answer is not JSON", **common)
            return CallResult(ok=True, data=data, text=text if data is None else "", **common)
        message = f"HTTP {status}" + ("" if readable else " (answer is not JSON)")
        return CallResult(ok=False, data=data, error_code=f"HTTP_{status}", message=message,
                          retry_after=retry_after, text=text[:1000] if data is None else "", **common)

    # --- OAuth2 ----------------------------------------------------------------------------

    def _oauth_token(self, provider, deadline_at: float) -> str:
        return auth.oauth_access_token(provider=provider, deadline_at=deadline_at, clock=self._clock,
                                       fetch=lambda: self._fetch_oauth_token(provider, deadline_at))

    def _fetch_oauth_token(self, provider, deadline_at: float) -> tuple[str, float]:
        """Ask the token endpoint (client credentials grant, client id/secret in HTTP basic)."""
        if not provider.oauth_token_url:
            raise auth.TokenUnavailable(f"provider {provider.slug!r} has no OAuth token URL", code=ECONN)
        url = provider.oauth_token_url
        if not url.startswith(("http://", "https://")):
            url = provider.base_url.rstrip("/") + "/" + url.lstrip("/")
        form = {"grant_type": "client_credentials"}
        if provider.oauth_scope:
            form["scope"] = provider.oauth_scope
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT,
                   "Content-Type": "application/x-www-form-urlencoded"}
        outgoing = auth.Outgoing(method="POST", path="", body=b"", headers=headers)
        basic = AuthScheme.BASIC
        credential = {"basic_username": self._credential("oauth_client_id"),
                      "basic_password": self._credential("oauth_client_secret")}.__getitem__
        auth.apply_auth(provider=_SchemeView(provider, basic), outgoing=outgoing, credential=credential)
        started = self._clock()
        exchange = self._exchange(provider, "POST", url, None, headers, urlencode(form).encode(), deadline_at)
        records.log_attempt(provider=provider.slug, operation="oauth.token", method="POST",
                            path=records.safe_path(url.split("://", 1)[-1].partition("/")[2] or "/")[0],
                            query_keys=[], attempt=1, status=exchange.status,
                            error_code=exchange.error_code or (None if exchange.status == 200 else
                                                                f"HTTP_{exchange.status}"),
                            latency_ms=(self._clock() - started) * 1000)
        if exchange.error_code:
            raise auth.TokenUnavailable(f"token endpoint: {exchange.message}", code=exchange.error_code)
        if exchange.status != 200:
            raise auth.TokenUnavailable(f"token endpoint answered HTTP {exchange.status}",
                                        code=f"HTTP_{exchange.status}", status=exchange.status)
        try:
            doc = jsonlib.loads(exchange.body)
            return str(doc["access_token"]), float(doc.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise auth.TokenUnavailable("token endpoint answer has no access_token", code=EBADRESPONSE) from None

    # --- after the call -------------------------------------------------------------------

    def _finish(self, result: CallResult, provider, operation, method, log_path, started) -> CallResult:
        result.latency_ms = (self._clock() - started) * 1000
        outcome = result.error_code or "ok"
        metrics.requests_total.labels(provider.slug, outcome).inc()
        metrics.request_seconds.labels(provider.slug, outcome).observe(result.latency_ms / 1000)
        try:
            if connection.in_atomic_block:
                with transaction.atomic():  # a savepoint: a failed insert must not doom the caller's work
                    records.record_call(provider=provider, operation=operation, method=method,
                                        path=log_path, result=result)
            else:
                records.record_call(provider=provider, operation=operation, method=method, path=log_path,
                                    result=result)
        except Exception:  # noqa: BLE001 - the record is for the admin; the call's result matters more
            logger.exception("could not record outbound call", extra={"provider": provider.slug})
        return result


class _SchemeView:
    """A provider seen with another auth scheme (the token request uses HTTP basic)."""

    def __init__(self, provider, scheme):
        self._provider, self.auth_scheme = provider, scheme

    def __getattr__(self, name):
        return getattr(self._provider, name)
