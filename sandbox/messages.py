"""What the core and the capabilities exchange: the request, the response, Stripe-shaped errors."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass
class SandboxRequest:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""


@dataclass
class SandboxResponse:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)
    # Close the connection without writing anything (the lost-response fault).
    drop: bool = False


class ApiError(Exception):
    """An error answered in Stripe's shape: {"error": {"type", "code", "message", ...}}."""

    def __init__(self, status: int, type_: str, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message,
                               **{k: v for k, v in extra.items() if v is not None}}}

    def response(self, headers: dict[str, str] | None = None) -> SandboxResponse:
        return SandboxResponse(self.status, self.body, headers or {})


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 `invalid_request_error`: the request was refused before anything happened."""
    return ApiError(400, "invalid_request_error", message, param=param, code=code)


def not_found(kind: str, object_id: str) -> ApiError:
    """A 404 for an object id in the path (`GET /v1/charges/ch_missing`)."""
    return ApiError(404, "invalid_request_error", f"No such {kind}: '{object_id}'",
                    code="resource_missing", param="id")


def new_id(prefix: str) -> str:
    """A fresh object id in Stripe's style: `ch_` + 24 hex digits."""
    return prefix + secrets.token_hex(12)
