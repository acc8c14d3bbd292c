"""Real HTTP servers on 127.0.0.1 for tests that need sockets (timeouts, refused connections,
several processes counting requests). Reusable by any suite.

    with LocalServer(lambda req: Reply(200, json={"ok": True})) as server:
        requests.get(server.url + "/x")
        assert server.requests[0].path == "/x"

    with LocalServer(script=[Reply(503), Reply(200, json={})]) as server: ...   # in order, then 404
    with SilentServer() as server: ...   # accepts connections and never answers
    port = closed_port()                 # nothing listens there: connection refused
"""

from __future__ import annotations

import json as jsonlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """An answer: status, body (json= or body=), headers. `hang=True` never answers (until the
    server stops), so the client's read timeout fires."""

    status: int = 200
    json: object = None
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass
class Recorded:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stall

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr logging
        pass

    def _handle(self):
        server: _Server = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        recorded = Recorded(self.command, self.path, dict(self.headers.items()), body)
        with server.lock:
            server.owner.requests.append(recorded)
            server.owner.count += 1
            server.owner.arrived.notify_all()
        reply = server.owner.next_reply(recorded)
        if reply.hang:
            server.owner.stopping.wait()
            return
        payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
        headers = dict(reply.headers)
        if reply.json is not None:
            payload = jsonlib.dumps(reply.json).encode()
            headers.setdefault("Content-Type", "application/json")
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once in concurrency tests
    allow_reuse_address = True


class LocalServer:
    """A threaded HTTP/1.1 server on a free loopback port. Answers come from `handler(request)`,
    or from `script` (one reply per request, in order; 404 after it runs out)."""

    def __init__(self, handler: Callable[[Recorded], Reply] | None = None, *, script: list[Reply] | None = None):
        self.handler = handler
        self.script = list(script or [])
        self.requests: list[Recorded] = []
        self.count = 0
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._server.lock = threading.Lock()
        self.arrived = threading.Condition(self._server.lock)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_reply(self, request: Recorded) -> Reply:
        if self.handler is not None:
            return self.handler(request)
        with self._server.lock:
            return self.script.pop(0) if self.script else Reply(404, json={"error": "no scripted reply"})

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least `n` requests have arrived (or the timeout): no sleeping in tests."""
        with self.arrived:
            return self.arrived.wait_for(lambda: self.count >= n, timeout=timeout)

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class SilentServer:
    """Accepts TCP connections and never sends a byte: a provider that hangs."""

    def __init__(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self._conns: list[socket.socket] = []
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            self.accepted += 1

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
