"""`ProviderClient`: one call to a provider under its row's policy, attempt by attempt."""

from __future__ import annotations

import json as jsonlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.views.decorators.debug import sensitive_variables
from requests.structures import CaseInsensitiveDict

from config import request_id
from integrations import auth, circuit, metrics, records, response_cache
from integrations.client import oauth2, retry, transport
from integrations.client.results import (
    CIRCUIT_OPEN,
    EBADRESPONSE,
    PROVIDER_DISABLED,
    RATE_LIMITED,
    CallResult,
    result_from_exchange,
)
from integrations.conf import integration_settings
from integrations.credentials import credential_value
from integrations.models import Provider
from integrations.ratelimit import (
    RateLimitExceeded,
    rate_limit_learn,
    rate_limit_permit,
    rate_limit_record,
)

logger = logging.getLogger("integrations.client")


def _circuit_outcome(exchange: transport.Exchange, result: CallResult) -> str:
    """What an attempt tells the breaker: the provider failing, working, or neither (429)."""
    if exchange.error_code is not None or result.error_code == EBADRESPONSE:
        return circuit.FAILURE
    if exchange.status == 408 or exchange.status >= 500:
        return circuit.FAILURE
    if exchange.status == 429:
        return circuit.NEUTRAL
    return circuit.SUCCESS  # answered: 2xx-4xx show the provider is up


class _StoreDown(Exception):
    """The shared store could not be asked: the attempt goes out without the gates."""


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
        self.session = session or transport.new_session()

    # --- policy and credentials -----------------------------------------------------------

    @property
    def provider(self) -> Provider:
        """The provider row, re-read when older than INTEGRATIONS_POLICY_REFRESH_SECONDS, so an
        admin edit (or a credential rotation) reaches long-lived clients without a restart."""
        if self._clock() - self._loaded_at >= float(integration_settings.POLICY_REFRESH_SECONDS):
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
            body = jsonlib.dumps(json, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
            content_type = "application/json"
        elif data is not None:
            body, content_type = transport.form_encode(data).encode(), "application/x-www-form-urlencoded"
        base_headers = {"Accept": "application/json", "User-Agent": transport.USER_AGENT}
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

    # --- the two gates --------------------------------------------------------------------

    def _permits(self, provider, deadline_at: float) -> tuple[circuit.Permit | None, float]:
        """Ask the breaker, then the rate limit: (the breaker's permit, None to fail fast;
        seconds waited for a token). Raises RateLimitExceeded, or _StoreDown when the shared
        store cannot be asked."""
        try:
            probe_ttl = max(deadline_at - self._clock(), 1.0)
            permit = circuit.circuit_permit(provider=provider, probe_ttl=probe_ttl)
            if permit is None:
                return None, 0.0  # nothing will be sent: no token is taken
            try:
                waited = rate_limit_permit(provider=provider, max_wait=max(0.0, deadline_at - self._clock()),
                                           sleep=self._sleep)
            except RateLimitExceeded:
                self._record_circuit(provider, permit, circuit.NEUTRAL, None)  # frees a probe claim
                raise
            if waited and not permit.probe:
                # The breaker's answer is as old as the wait: ask again before sending.
                permit = circuit.circuit_permit(provider=provider, probe_ttl=probe_ttl)
                if permit is None:
                    self._give_back_token(provider)
            return permit, waited
        except RateLimitExceeded:
            raise
        except Exception as err:  # noqa: BLE001 - see the caller
            raise _StoreDown from err

    # Error reports (and DEBUG pages) must not show the headers these frames build.
    @sensitive_variables("headers", "token", "outgoing", "base_headers")
    def _attempts(self, provider, method, url, params, body, base_headers, idempotency_key, operation,
                  log_path, query_keys, deadline_at, expect_json) -> CallResult:
        slug = provider.slug
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            gated = True
            try:
                permit, waited = self._permits(provider, deadline_at)
            except RateLimitExceeded as err:
                metrics.rate_limited_total.labels(slug).inc()
                return CallResult(ok=False, error_code=RATE_LIMITED, attempts=attempt - 1, provider=slug,
                                  retry_after=err.wait,
                                  message="client-side rate limit: no token within the deadline")
            except _StoreDown:
                # The shared store (Redis or the database) is unreachable: fail open. The call
                # goes out without the breaker and the client-side limit rather than failing a
                # request the provider could serve; its own limits and 429s still apply.
                logger.warning("shared state unavailable: calling without circuit breaker and rate limit",
                               extra={"provider": slug}, exc_info=True)
                gated, permit, waited = False, circuit.Permit(), 0.0
            if permit is None:
                records.log_attempt(provider=slug, operation=operation, method=method, path=log_path,
                                    query_keys=query_keys, attempt=attempt, status=None,
                                    error_code=CIRCUIT_OPEN, latency_ms=0)
                return CallResult(ok=False, error_code=CIRCUIT_OPEN, attempts=attempt - 1, provider=slug,
                                  message=f"circuit for {slug!r} is open: failing fast")
            if waited:
                metrics.rate_limit_wait_seconds.labels(slug).inc(waited)

            headers = dict(base_headers)
            outgoing = auth.Outgoing(method=method, path=log_path, body=body, headers=headers)
            try:
                token = auth.apply_auth(provider=provider, outgoing=outgoing, credential=self._credential,
                                        oauth_token=lambda: self._oauth_token(provider, deadline_at))
            except BaseException as err:
                if gated:  # nothing was sent: the breaker learns nothing, the token goes back
                    self._record_circuit(provider, permit, circuit.NEUTRAL, None)
                    self._give_back_token(provider)
                if isinstance(err, auth.TokenUnavailable):
                    return CallResult(ok=False, error_code=err.code, status=err.status, attempts=attempt,
                                      provider=slug, message=str(err))
                raise

            attempt_started = self._clock()
            exchange = transport.exchange(self.session, method, url, params=params, headers=headers, body=body,
                                          connect_timeout=provider.connect_timeout,
                                          read_timeout=provider.read_timeout, deadline_at=deadline_at,
                                          clock=self._clock)
            latency_ms = (self._clock() - attempt_started) * 1000
            result = result_from_exchange(exchange, expect_json=expect_json, provider=slug, attempt=attempt,
                                          retry_after=retry.parse_retry_after(exchange.headers.get("Retry-After")))
            if exchange.status is not None:
                self._learn_quota(provider, result)
            if gated:
                changed = self._record_circuit(provider, permit, _circuit_outcome(exchange, result),
                                               result.error_code)
                if changed:
                    metrics.circuit_transitions_total.labels(slug, changed).inc()
                    metrics.circuit_state.labels(slug).set(2 if changed == circuit.OPEN else 0)
                    logger.warning("circuit %s", changed, extra={"provider": slug, "circuit_state": changed})
            metrics.attempts_total.labels(slug, result.error_code or "ok").inc()

            # What next: done, re-authenticate once, or wait and retry.
            decision = retry.Decision()
            if not result.ok:
                decision = retry.decide(
                    method=method, idempotency_key=idempotency_key, status=exchange.status,
                    error_code=exchange.error_code, retry_after=result.retry_after, attempt=attempt,
                    max_attempts=provider.max_attempts, time_left=deadline_at - self._clock(),
                    backoff_base=provider.backoff_base, backoff_max=provider.backoff_max,
                    retry_after_max=float(integration_settings.RETRY_AFTER_MAX), rng=self._rng)
            retry_in = decision.delay
            if exchange.status == 401 and token and not reauthenticated:
                # A refused token means nothing was done: one more try with a new one is safe.
                auth.oauth_drop_token(provider=provider, token=token)
                reauthenticated, retry_in, decision = True, 0.0, retry.Decision(delay=0.0)
            records.log_attempt(provider=slug, operation=operation, method=method, path=log_path,
                                query_keys=query_keys, attempt=attempt, status=exchange.status,
                                error_code=result.error_code, latency_ms=latency_ms, retry_in=retry_in)
            if decision.past_deadline:
                metrics.rate_limited_total.labels(slug).inc()
                told = result.retry_after
                return CallResult(
                    ok=False, status=result.status, data=result.data, error_code=RATE_LIMITED, attempts=attempt,
                    retry_after=told, headers=result.headers, provider=slug, text=result.text,
                    message=f"provider asked to retry after {told:.1f}s, past the deadline")
            if retry_in is None:
                return result
            if exchange.status != 401:
                metrics.retries_total.labels(slug).inc()
            if retry_in > 0:
                self._sleep(retry_in)

    @staticmethod
    def _record_circuit(provider, permit, outcome, error_code) -> str | None:
        try:
            return circuit.circuit_record(provider=provider, permit=permit, outcome=outcome, error=error_code or "")
        except Exception:  # noqa: BLE001 - the answer is already here; losing one count is the lesser harm
            logger.warning("could not update the circuit state", extra={"provider": provider.slug}, exc_info=True)
            return None

    @staticmethod
    def _learn_quota(provider, result: CallResult) -> None:
        """X-RateLimit-Remaining/Reset on any answer: a used-up quota pauses the provider's
        next calls in every process (integrations.ratelimit)."""
        try:
            rate_limit_learn(provider=provider, headers=result.headers, retry_after=result.retry_after)
        except Exception:  # noqa: BLE001 - the answer is here; the next 429 teaches the same
            logger.warning("could not record the provider's quota", extra={"provider": provider.slug},
                           exc_info=True)

    @staticmethod
    def _give_back_token(provider) -> None:
        try:
            rate_limit_record(provider=provider, sent=False)
        except Exception:  # noqa: BLE001 - one token lost is the lesser harm
            logger.warning("could not return a rate-limit token", extra={"provider": provider.slug}, exc_info=True)

    # --- OAuth2 ----------------------------------------------------------------------------

    def _oauth_token(self, provider, deadline_at: float) -> str:
        def fetch():
            return oauth2.fetch_token(session=self.session, provider=provider, credential=self._credential,
                                      deadline_at=deadline_at, clock=self._clock)

        return auth.oauth_access_token(provider=provider, deadline_at=deadline_at, clock=self._clock, fetch=fetch)

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
