"""Socket behaviour against real loopback servers: timeouts, refused connections, deadlines."""

from __future__ import annotations

import time

from integrations.client import ProviderClient
from tests.support.local_server import LocalServer, Reply, SilentServer, closed_port


def test_a_server_that_never_answers_times_out_within_the_read_timeout(make_provider):
    with SilentServer() as server:
        provider = make_provider(server.url, read_timeout=0.3, max_attempts=1)
        started = time.monotonic()

        result = ProviderClient(provider).request("GET", "/v1/thing")

        elapsed = time.monotonic() - started
        assert result.error_code == "ETIMEDOUT" and result.status is None and result.attempts == 1
        assert 0.3 <= elapsed < 0.3 + 0.4
        assert server.accepted == 1


def test_a_closed_port_is_a_connection_error(make_provider):
    provider = make_provider(f"http://127.0.0.1:{closed_port()}", max_attempts=1)

    result = ProviderClient(provider).request("GET", "/v1/thing")

    assert result.error_code == "ECONN" and result.status is None


def test_timeout_then_success_is_retried_over_real_sockets(make_provider, make_client):
    with LocalServer(script=[Reply(hang=True), Reply(200, json={"id": 1})]) as server:
        provider = make_provider(server.url, read_timeout=0.2)

        result = make_client(provider).request("GET", "/v1/thing")

        assert result.ok and result.attempts == 2 and server.count == 2


def test_post_without_key_is_not_retried_after_a_real_read_timeout(make_provider, make_client):
    with LocalServer(script=[Reply(hang=True), Reply(200, json={"id": 1})]) as server:
        provider = make_provider(server.url, read_timeout=0.2)

        result = make_client(provider).request("POST", "/v1/charges", json={"amount": 1})

        assert result.error_code == "ETIMEDOUT" and result.attempts == 1 and server.count == 1


def test_the_deadline_bounds_the_whole_call_across_attempts(make_provider):
    with SilentServer() as server:
        provider = make_provider(server.url, read_timeout=0.3, max_attempts=10, backoff_base=0, backoff_max=0,
                                 deadline=0.7)
        started = time.monotonic()

        result = ProviderClient(provider).request("GET", "/v1/thing")

        elapsed = time.monotonic() - started
        assert result.error_code == "ETIMEDOUT"
        assert 2 <= result.attempts < 10
        assert elapsed < 0.7 + 0.3


def test_a_server_trickling_its_answer_is_cut_off_at_the_deadline(make_provider):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/json\r\n\r\n")
        while not stop.wait(0.05):  # a byte every 50 ms: each read is quick, the whole is not
            try:
                conn.sendall(b" ")
            except OSError:
                break
        conn.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        provider = make_provider(f"http://127.0.0.1:{listener.getsockname()[1]}", read_timeout=0.5,
                                 max_attempts=1, deadline=0.6)
        started = time.monotonic()
        result = ProviderClient(provider).request("GET", "/v1/thing")
        assert result.error_code == "ETIMEDOUT"
        assert time.monotonic() - started < 0.6 + 0.3
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_responses_larger_than_the_limit_are_refused(make_provider, settings):
    settings.INTEGRATIONS_MAX_RESPONSE_BYTES = 1000
    with LocalServer(script=[Reply(200, body=b"[" + b"1," * 2000 + b"1]")]) as server:
        provider = make_provider(server.url, max_attempts=1)

        result = ProviderClient(provider).request("GET", "/v1/big")

        assert result.error_code == "EBADRESPONSE" and "larger" in result.message


def test_connections_are_kept_alive_between_calls(make_provider):
    ports = []

    def handler(request):
        return Reply(200, json={"ok": True})

    with LocalServer(handler) as server:
        provider = make_provider(server.url)
        client = ProviderClient(provider)
        for _ in range(3):
            assert client.request("GET", "/v1/thing").ok
        pool = client.session.get_adapter(server.url).poolmanager
        ports = list(pool.pools.keys())
        assert len(ports) == 1
        assert pool.pools[ports[0]].num_connections == 1
