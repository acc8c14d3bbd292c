"""The sandbox's HTTP layer: a stdlib threading server in its own process (or thread in tests).

It shares nothing with the Django service: not its WSGI server, not its threads, not its
database. Each connection gets a thread; HTTP/1.1 keep-alive is supported, so clients with
connection pools behave as they would against a real provider.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from sandbox.api import Sandbox
from sandbox.messages import ApiError, SandboxRequest, SandboxResponse

logger = logging.getLogger("sandbox.http")

MAX_BODY_BYTES = 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "provider-gateway-sandbox/1"
    sys_version = ""
    # An idle keep-alive connection frees its thread after this many seconds.
    timeout = 120
    # Headers and body leave in one write, without Nagle's delay: written separately, a
    # small response waits ~40 ms for the client's delayed ACK on every request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self):  # noqa: N802 - the stdlib's naming
        self._serve()

    def do_POST(self):  # noqa: N802
        self._serve()

    def do_DELETE(self):  # noqa: N802
        self._serve()

    # Methods the API does not use still get a JSON 405, not the stdlib's HTML 501.
    do_PUT = do_PATCH = do_DELETE

    def _serve(self) -> None:
        started = time.monotonic()
        parts = urlsplit(self.path)
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._send(_refused(411, "Send a Content-Length; chunked bodies are not supported."))
            return
        try:
            size = int(length or 0)
        except ValueError:
            size = -1
        if size < 0:
            self._send(_refused(400, "Invalid Content-Length."))
            return
        if size > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would be parsed as the next request
            self._send(_refused(413, f"Body over {MAX_BODY_BYTES} bytes."))
            return
        body = self.rfile.read(size) if size else b""
        request = SandboxRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.sandbox.handle(request)
        except Exception:
            logger.exception("sandbox error on %s %s", self.command, parts.path)
            response = ApiError(500, "api_error", "Sandbox bug.").response()
        if response.drop:
            # The work is committed; the client never hears about it.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            self._send(response)
        logger.info("%s %s %s %.0fms", self.command, parts.path,
                    "dropped" if response.drop else response.status, (time.monotonic() - started) * 1000)

    def _send(self, response: SandboxResponse) -> None:
        payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        # Requests are logged once, in _serve, without headers (they carry the API key).
        pass


def _refused(status: int, message: str) -> SandboxResponse:
    """A request the HTTP layer refuses before the sandbox sees it."""
    return ApiError(status, "invalid_request_error", message).response()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many clients connect at once in concurrency tests and benchmarks.
    request_queue_size = 128

    def __init__(self, address, sandbox: Sandbox, *, sock: socket.socket | None = None):
        self.sandbox = sandbox
        if sock is None:
            super().__init__(address, _Handler)
        else:
            super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
            self.socket.close()
            self.socket = sock
            self.server_address = sock.getsockname()[:2]
            sock.listen(self.request_queue_size)


class SandboxServer:
    """A running sandbox: `serve_forever()` in a command, `start()`/`stop()` in tests.

    Pass `port=0` to get a free port, or `sock=` an already bound listening socket (a
    parent process that binds port 0 and hands the socket over knows the port up front).
    """

    def __init__(self, sandbox: Sandbox, *, host: str = "127.0.0.1", port: int = 8099,
                 sock: socket.socket | None = None):
        self.sandbox = sandbox
        self._server = _Server((host, port), sandbox, sock=sock)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self.sandbox.start()
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()
            self.sandbox.stop()

    def start(self) -> SandboxServer:
        self.sandbox.start()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sandbox-http", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving (safe from a signal handler thread or another thread)."""
        self._server.shutdown()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self.sandbox.stop()
