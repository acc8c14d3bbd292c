"""The project's real web server (gunicorn) for one test module, and a raw HTTP/1.1 client
that sends chunked bodies, as providers do.

Django's test client always sets Content-Length, so it cannot show how the app reads a
body whose framing is `Transfer-Encoding: chunked`; only a real server can.

    with gunicorn_server() as url:            # the test database must be committed to:
        answer = post_chunked(url + "/webhooks/x/", body, headers)   # use transactional_db
        assert answer.status == 200
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from tests.support import processes
from tests.support.databases import database_url


@contextlib.contextmanager
def gunicorn_server(*, log_dir: Path | None = None) -> Iterator[str]:
    """gunicorn with the production config (config/gunicorn.py, one sync worker) on a free
    loopback port, against the test database; yields its base URL, stops it on exit."""
    name = os.path.basename(str(connection.settings_dict["NAME"]))
    if not name.startswith("test"):
        raise RuntimeError(f"gunicorn_server needs the test database, not {name!r}")
    env = {
        "DATABASE_URL": database_url(),
        "DJANGO_DEBUG": "1",
        # The server must decrypt the webhook secrets the test process encrypts.
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "GUNICORN_WORKERS": "1",
        "GUNICORN_BIND": None,
        "LOG_LEVEL": "WARNING",
    }
    if settings.REDIS_URL:  # the same broker and cache as the test process
        env["REDIS_URL"] = settings.REDIS_URL

    def argv(fd: int) -> list[str]:
        # --bind overrides the config file's GUNICORN_BIND: the socket this test holds.
        return [str(processes.BIN / "gunicorn"), "-c", str(processes.ROOT / "config" / "gunicorn.py"),
                "--bind", f"fd://{fd}", "config.wsgi:application"]

    server = processes.start_http_service("gunicorn", argv, ready_path="/health/live", env=env,
                                          log_dir=log_dir)
    try:
        yield server.url
    finally:
        server.stop()


@dataclass
class Answer:
    """A response read off the socket: status, lower-case headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def post_chunked(url: str, body: bytes, headers: dict[str, str], *, chunk_size: int = 16 * 1024,
                 timeout: float = 15.0) -> Answer:
    """POST `body` as `Transfer-Encoding: chunked` (no Content-Length) on a fresh socket.

    Written by hand rather than with http.client, so that a server answering before the
    whole body is sent (a 413) still gets its answer read: a write that fails because the
    server stopped reading ends the sending, not the test.
    """
    parts = urlsplit(url)
    head = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}", "Transfer-Encoding: chunked",
            "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    # Header values go out as latin-1, as WSGI servers read them back.
    request_head = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request_head)
            for start in range(0, len(body), chunk_size):
                chunk = body[start:start + chunk_size]
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        return _read_answer(sock)


def _read_answer(sock: socket.socket) -> Answer:
    raw = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1."):
        raise AssertionError(f"not an HTTP response: {raw[:200]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return Answer(int(lines[0].split()[1]), headers, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out
