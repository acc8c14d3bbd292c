"""One HTTP exchange: the locked-down session, connect/read timeouts capped by the call's deadline."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from integrations.client.results import EBADRESPONSE, ECONN, ETIMEDOUT
from integrations.conf import integration_settings

USER_AGENT = "provider-gateway/1.0"


@dataclass
class Exchange:
    """One HTTP attempt's raw outcome: an answer (`status`, `headers`, `body`) or an
    `error_code` (ECONN, ETIMEDOUT, or EBADRESPONSE for an answer too large to read)."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=CaseInsensitiveDict)
    body: bytes = b""
    error_code: str | None = None
    message: str = ""
    # For a failure without an answer: True when the request may have reached the provider
    # (read timeout, connection lost after sending), False when it certainly did not
    # (refused, DNS, connect timeout, never sent). Only a key makes a retry of such a POST safe.
    maybe_delivered: bool = False


def new_session() -> requests.Session:
    """A session that never follows redirects (see `exchange`) nor retries on its own."""
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


def _before_sending(err: BaseException) -> bool:
    """Whether a failed request certainly never reached the provider: no connection was made
    (refused, unreachable, DNS, connect timeout). Anything else may have been sent."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        # urllib3's NewConnectionError and NameResolutionError subclass ConnectTimeoutError.
        if isinstance(err, urllib3.exceptions.ConnectTimeoutError | ConnectionRefusedError | socket.gaierror):
            return True
        if isinstance(err, urllib3.exceptions.MaxRetryError) and err.reason is not None:
            err = err.reason
            continue
        if err.args and isinstance(err.args[0], BaseException):
            err = err.args[0]
            continue
        err = err.__cause__ or err.__context__
    return False


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


@sensitive_variables("headers")
def exchange(session: requests.Session, method: str, url: str, *, params: Mapping[str, Any] | None,
             headers: Mapping[str, str], body: bytes, connect_timeout: float, read_timeout: float,
             deadline_at: float, clock: Callable[[], float]) -> Exchange:
    """Send one request and read its whole answer, or say why not. Never raises for network
    trouble. Each timeout is capped by the time left before `deadline_at` (on `clock`), and
    the deadline is checked between reads of the body."""
    remaining = deadline_at - clock()
    if remaining <= 0:
        return Exchange(error_code=ETIMEDOUT, message="deadline passed before the attempt")
    timeout = (min(connect_timeout, remaining), min(read_timeout, remaining))
    try:
        response = session.request(method, url, params=params, headers=headers, data=body or None,
                                   timeout=timeout, allow_redirects=False, stream=True)
    except requests.exceptions.Timeout as err:
        connect = isinstance(err, requests.exceptions.ConnectTimeout)
        return Exchange(error_code=ETIMEDOUT, message=f"{'connect' if connect else 'read'} timed out",
                        maybe_delivered=not connect)
    except requests.exceptions.InvalidHeader:
        # Checked before any byte is sent, like a header that cannot be encoded below.
        return Exchange(error_code=ECONN, message="request not sent: a header value is invalid "
                                                  "(check the provider's credentials)")
    except requests.exceptions.RequestException as err:
        sent = not _before_sending(err)
        if _is_timeout(err):
            return Exchange(error_code=ETIMEDOUT, message="timed out", maybe_delivered=sent)
        return Exchange(error_code=ECONN, message=f"connection failed: {type(err).__name__}",
                        maybe_delivered=sent)
    except UnicodeError:
        # http.client encodes headers as Latin-1; a stored secret outside it (credential
        # values are checked to be ASCII, but rows may predate that) must not be a 500.
        return Exchange(error_code=ECONN, message="request not sent: a header value is not Latin-1 "
                                                  "(check the provider's credentials)")
    try:
        limit = int(integration_settings.MAX_RESPONSE_BYTES)
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
                return Exchange(status=response.status_code, headers=response.headers,
                                error_code=EBADRESPONSE, message=f"answer larger than {limit} bytes")
            if clock() > deadline_at:
                # The read timeout applies per read: a server trickling bytes is cut off here.
                return Exchange(error_code=ETIMEDOUT, message="deadline passed while reading the answer",
                                maybe_delivered=True)
    except Exception as err:  # noqa: BLE001 - any failure while reading is a broken exchange
        # The answer had begun: the request certainly arrived.
        if _is_timeout(err):
            return Exchange(error_code=ETIMEDOUT, message="read timed out", maybe_delivered=True)
        return Exchange(error_code=ECONN, message=f"connection broke while reading: {type(err).__name__}",
                        maybe_delivered=True)
    finally:
        response.close()
    return Exchange(status=response.status_code, headers=response.headers, body=b"".join(chunks))
