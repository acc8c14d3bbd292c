"""The contract's error body (`error_body`, used by the API, webhooks and health alike) and
Django-level 404/500 handlers: JSON in that shape for machine paths, HTML elsewhere.

DRF's exception handler (api/exceptions.py) covers errors inside API views; these cover what
never reaches a view (unknown URLs) and unhandled exceptions (never with a traceback or settings).
"""

from __future__ import annotations

import functools

from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

_MACHINE_PREFIXES = ("/api/", "/webhooks/", "/health/", "/metrics")


def _is_machine(request) -> bool:
    return request.path.startswith(_MACHINE_PREFIXES)


def error_body(type_: str, message: str, **extra) -> dict:
    """The contract's error shape, the one place it is built (API, webhooks, health, 404/500):
    {"error": {"type": ..., "message": ..., <extra keys that are not None>}}."""
    return {"error": {"type": type_, "message": message, **{k: v for k, v in extra.items() if v is not None}}}


def error_response(type_: str, message: str, status: int, **extra) -> JsonResponse:
    return JsonResponse(error_body(type_, message, **extra), status=status)


def _other_slash(path: str) -> str | None:
    """The same path with the trailing slash removed or added, when that is an endpoint:
    the commonest mistake against a contract whose API paths have no trailing slash."""
    candidate = path[:-1] if path.endswith("/") else path + "/"
    try:
        match = resolve(candidate)
    except Resolver404:
        return None
    return None if match.url_name == MACHINE_NOT_FOUND else candidate


def not_found(request, exception=None):
    if _is_machine(request):
        return machine_not_found(request)
    return defaults.page_not_found(request, exception)


MACHINE_NOT_FOUND = "machine-not-found"


@csrf_exempt
def machine_not_found(request, *args, **kwargs):
    """Unknown URLs under the machine prefixes: a JSON 404 in the contract's shape, also in
    development, where Django would otherwise answer with its HTML debug page."""
    message = f"No such endpoint: {request.method} {request.path}"
    other = _other_slash(request.path)
    if other is not None:
        hint = "without the trailing slash" if request.path.endswith("/") else "with a trailing slash"
        message += f". Did you mean {other} ({hint})?"
    return error_response("not_found", message, 404)


def server_error(request):
    if _is_machine(request):
        return error_response("api_error", "Something went wrong on our side; it has been logged.", 500)
    return defaults.server_error(request)


def bad_request(request, exception=None):
    if _is_machine(request):
        return error_response("invalid_request", "The request could not be understood.", 400)
    return defaults.bad_request(request, exception)


def get_only(view):
    """For machine GET endpoints (health, metrics): any other method is a JSON 405, not
    Django's CSRF page or an empty answer."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = error_response("method_not_allowed", f"{request.method} is not allowed here; use GET.", 405)
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper
