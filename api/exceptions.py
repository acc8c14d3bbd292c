"""The API's exceptions and DRF's EXCEPTION_HANDLER, which renders them in the contract's error
shape (built by config.errors.error_body, the one place for every error body).

Apps raise `ServiceError` subclasses (class-level status and type, like DRF's
APIException) or DRF exceptions; both end up here.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from config.errors import error_body

logger = logging.getLogger(__name__)


class ServiceError(drf.APIException):
    """Base for contract errors: override status_code, default_code (the `type`) and default_detail."""

    status_code = 400
    default_code = "invalid_request"
    default_detail = "The request is invalid."

    def __init__(self, detail=None, code=None, *, headers=None, param=None):
        super().__init__(detail, code)
        self.headers = headers or {}
        self.param = param


_TYPE_BY_DRF = {
    drf.NotAuthenticated: "authentication_required",
    drf.AuthenticationFailed: "authentication_failed",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.ParseError: "invalid_json",
    drf.Throttled: "rate_limited",
}


def _first_error(detail, path=()) -> tuple[str, str]:
    """The first (field path, message) of a DRF ValidationError detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            return _first_error(value, (*path, str(key)))
    if isinstance(detail, list) and detail:
        if isinstance(detail[0], (dict, list)):
            return _first_error(detail[0], path)
        return ".".join(p for p in path if p != "non_field_errors"), str(detail[0])
    return ".".join(path), str(detail)




def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error of the API in the contract's JSON shape."""
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf.PermissionDenied()
    if not isinstance(exc, drf.APIException):
        return None  # a real bug: Django's 500 handling (and its logging) takes it

    headers = dict(getattr(exc, "headers", None) or {})
    if isinstance(exc, drf.AuthenticationFailed | drf.NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, ServiceError):
        body = error_body(type(exc).default_code, str(exc.detail), param=exc.param)
    elif isinstance(exc, drf.ValidationError):
        field, message = _first_error(exc.detail)
        text = f"{field}: {message}" if field else message
        body = error_body("invalid_request", text, param=field or None)
    else:
        type_ = next((t for cls, t in _TYPE_BY_DRF.items() if isinstance(exc, cls)), "api_error")
        body = error_body(type_, str(exc.detail))

    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)
