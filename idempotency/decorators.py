"""`@idempotent`: the idempotency table of the contract, for one DRF handler method."""

from __future__ import annotations

import functools

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from idempotency import conf, metrics
from idempotency.exceptions import (
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    IdempotencyLockLost,
)
from idempotency.services import (
    Replay,
    idempotency_claim,
    idempotency_finish,
    idempotency_release,
    key_in_use,
    request_fingerprint,
)

_META_KEY = "HTTP_IDEMPOTENCY_KEY"
_renderer = JSONRenderer()


def is_stored(status: int) -> bool:
    """Which answers are final. A 400 (the request was wrong), a 429 and any 5xx are not:
    the same key may be retried, and the retry resumes whatever work had begun."""
    return not (status == 400 or status == 429 or status >= 500)


def idempotency_key(request) -> str:
    """The request's Idempotency-Key, validated (400 idempotency_key_missing / _invalid)."""
    if _META_KEY not in request.META:
        raise IdempotencyKeyMissing()
    key = request.META[_META_KEY].strip()
    if not key or len(key) > conf.MAX_KEY_LENGTH:
        raise IdempotencyKeyInvalid()
    return key


def replay_response(replay: Replay) -> HttpResponse:
    response = HttpResponse(replay.body, status=replay.status, content_type="application/json")
    response[conf.REPLAYED_HEADER] = "true"
    return response


def _split(args) -> tuple[object | None, Request, tuple]:
    """(view, request, rest) for a method handler `(self, request, ...)` or an @api_view
    function `(request, ...)`."""
    if isinstance(args[0], Request):
        return None, args[0], args[1:]
    return args[0], args[1], args[2:]


def _error_response(view, request, exc) -> Response:
    """What DRF would answer for `exc` (re-raises what it would not handle)."""
    if view is not None:
        return view.handle_exception(exc)
    response = api_settings.EXCEPTION_HANDLER(exc, {"request": request, "view": None})
    if response is None:
        raise exc
    return response


def idempotent(handler):
    """Make a DRF POST handler run at most once per Idempotency-Key (the contract's table).

    Decorate a view method `post(self, request, ...)` or, under `@api_view`, the function.
    Runs after authentication (keys are scoped to `request.user`, the Consumer). The
    handler finds its `Execution` on `request.idempotency` and resumes from its
    `recovery_point` / `resource_id` when a previous attempt stopped half-way.
    """

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        view, request, _ = _split(args)
        key = idempotency_key(request)
        fingerprint = request_fingerprint(method=request.method, path=request.path, body=request.data)
        try:
            claim = idempotency_claim(consumer_id=request.user.pk, key=key, method=request.method,
                                      path=request.path, fingerprint=fingerprint)
        except IdempotencyKeyInUse:
            metrics.CONFLICTS.labels(type="in_use").inc()
            raise
        except IdempotencyKeyReused:
            metrics.CONFLICTS.labels(type="reused").inc()
            raise
        if isinstance(claim, Replay):
            metrics.REPLAYS.labels(status=str(claim.status)).inc()
            return replay_response(claim)
        if claim.resumed:
            metrics.RESUMES.inc()

        request.idempotency = claim
        try:
            response = handler(*args, **kwargs)
        except IdempotencyLockLost:
            # A takeover owns the key now; it will store the answer. Tell this caller to retry.
            raise key_in_use() from None
        except (APIException, Http404, PermissionDenied) as exc:
            response = _error_response(view, request, exc)
        except Exception:
            # A bug or an outage we did not expect: free the key, keep the recovery point.
            idempotency_release(execution=claim)
            raise
        # (A BaseException such as the process being killed leaves the lock held on
        # purpose: after the lock timeout a retry takes over and resumes.)

        if is_stored(response.status_code):
            if isinstance(response, Response):  # not rendered yet: render its data as JSON
                body = _renderer.render(response.data).decode("utf-8") if response.data is not None else ""
            else:
                body = response.content.decode("utf-8")
            idempotency_finish(execution=claim, status=response.status_code, body=body)
        else:
            idempotency_release(execution=claim)
        return response

    wrapper.idempotent = True  # lets a test check that every POST under /api/v1/ has the layer
    return wrapper
