"""What several benchmarks share: alternating two sides call by call, free loopback ports, and
waiting for another process's work with a deadline. Imported as `bench.common` (each script
puts the checkout on sys.path first)."""

from __future__ import annotations

import socket
import time


def side_by_side(a, b, n: int) -> tuple[float, float]:
    """Seconds spent in `a` and in `b` over n calls each, alternating one by one (and which
    goes first), so load from anything else on the machine falls on both sides alike."""
    spent = [0.0, 0.0]
    for i in range(n):
        order = ((0, a), (1, b)) if i % 2 == 0 else ((1, b), (0, a))
        for side, func in order:
            started = time.perf_counter()
            func(i)
            spent[side] += time.perf_counter() - started
    return spent[0], spent[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.02):
    """Poll `condition` (another process's work) until truthy; SystemExit on timeout."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return result
