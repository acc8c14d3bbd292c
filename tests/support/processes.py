"""Real processes on free loopback ports, always cleaned up.

A test binds a listening socket on 127.0.0.1 port 0 itself and hands it to the child
(gunicorn's `fd://N`, `run_sandbox --fd N`), so the port is known before the child starts
and no other program can take it in between. Every child runs in its own session
(process group): stopping signals the main process the way it wants to be stopped
(SIGINT for qcluster, whose workers can hang on a group-wide SIGTERM), and anything still
alive after the timeout is killed with its whole group. An atexit hook kills whatever a
crashed test run left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(sys.executable).parent

_live: set[Process] = set()


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket bound to `port` (0: a free one) on `host`, listening, inheritable by a child."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago, for the rare program that cannot take a socket.
    Prefer `listening_socket`: between this call and the child's bind the port could go."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass(eq=False)
class Process:
    """A started child: its Popen, where its output goes, and how to stop it."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    stop_signal: int = signal.SIGTERM
    url: str | None = None
    _log_file: object = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self, tail: int = 8000) -> str:
        """The child's combined stdout and stderr (the end of it)."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def signal(self, signum: int) -> None:
        """Send `signum` to the main process only (not its group)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signum)

    def stop(self, timeout: float = 10.0) -> int:
        """Ask the main process to stop, wait, then kill the whole group if needed.

        Returns the exit status (negative: killed by that signal). Always leaves no
        process of this child's group behind, whatever happened before.
        """
        try:
            if self.alive():
                self.signal(self.stop_signal)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.kill_group()
            self.kill_group()  # children the main process left behind, if any
            return self.popen.wait(timeout)
        finally:
            _live.discard(self)
            if self._log_file:
                self._log_file.close()

    def kill_group(self) -> None:
        """SIGKILL every process of the group and wait until none is left running (a
        grandchild still dying may hold files, such as a SQLite database, open)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        deadline = time.monotonic() + 5
        while _group_alive(self.popen.pid) and time.monotonic() < deadline:
            time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies, which hold nothing, do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may contain spaces.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def start(
    name: str,
    argv: list[str],
    *,
    env: dict[str, str | None] | None = None,
    sock: socket.socket | None = None,
    stop_signal: int = signal.SIGTERM,
    log_dir: Path | None = None,
) -> Process:
    """Start `argv` in its own session with output to a log file. A `sock` is inherited
    under the same descriptor number and the parent's copy is closed (only the child
    answers on it, so a stopped child means "connection refused", as for a real outage)."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="e2e-logs-"))
    log_path = log_dir / f"{name}.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 - closed by Process.stop
    # A None value removes that variable from the inherited environment.
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    full_env["PYTHONUNBUFFERED"] = "1"
    popen = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        pass_fds=(sock.fileno(),) if sock else (),
    )
    url = None
    if sock:
        host, port = sock.getsockname()[:2]
        url = f"http://{host}:{port}"
        sock.close()
    process = Process(name, popen, log_path, stop_signal, url, log_file)
    _live.add(process)
    return process


def wait_until(condition: Callable[[], object], *, timeout: float, interval: float = 0.05,
               what: str = "condition", process: Process | None = None) -> object:
    """Poll `condition` until it returns something truthy; fail with a clear message (and
    the process's log) on timeout or when `process` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode} while waiting "
                               f"for {what}; its log:\n{process.log()}")
        if time.monotonic() > deadline:
            detail = f"; {process.name} log:\n{process.log()}" if process else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def http_ok(url: str) -> Callable[[], bool]:
    """A condition: `url` answers 2xx."""
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError):
            return False
    return check


def start_http_service(name: str, argv_for_fd: Callable[[int], list[str]], *, ready_path: str,
                       env: dict[str, str | None] | None = None, stop_signal: int = signal.SIGTERM,
                       timeout: float = 30.0, log_dir: Path | None = None,
                       sock: socket.socket | None = None) -> Process:
    """Start a server on `sock` (default: a fresh loopback socket) and wait until
    `ready_path` answers 2xx.

    `argv_for_fd(fd)` builds the command line for the inherited descriptor. On failure
    to become ready the child is stopped and the error carries its log.
    """
    sock = sock or listening_socket()
    fd = sock.fileno()
    process = start(name, argv_for_fd(fd), env=env, sock=sock, stop_signal=stop_signal, log_dir=log_dir)
    try:
        wait_until(http_ok(process.url + ready_path), timeout=timeout, what=f"{name} to be ready",
                   process=process)
    except BaseException:
        process.stop()
        raise
    return process


class Processes:
    """Starts processes and stops all of them, newest first, however the block ends."""

    def __init__(self, log_dir: Path | None = None):
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="e2e-logs-"))
        self.started: list[Process] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def add(self, process: Process) -> Process:
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        errors = []
        for process in reversed(self.started):
            try:
                process.stop()
            except Exception as err:  # noqa: BLE001 - stop the others, then report
                errors.append(err)
        self.started.clear()
        if errors:
            raise errors[0]

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} ({p.log_path})\n{p.log()}" for p in self.started)


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_live):
        process.kill_group()


def python(*args: str) -> list[str]:
    return [PYTHON, *args]


def manage(*args: str) -> list[str]:
    return [PYTHON, str(ROOT / "manage.py"), *args]


# --- forked workers: the same Django code in several processes at once ---------------

def _child(target, queue, index, args):
    from django.db import connections

    try:
        queue.put((index, "ok", target(index, *args)))
    except BaseException as err:  # noqa: BLE001 - reported to the parent test
        queue.put((index, "error", repr(err)))
    finally:
        connections.close_all()


def run_processes(target, count: int, *args, on_result=None, timeout: float = 30.0) -> list:
    """Run target(index, *args) in `count` forked processes; returns their results by index.

    Database connections are closed first so each child opens its own (to the same test
    database). `on_result(index, value)` is called in the parent as each result arrives.
    """
    import multiprocessing

    from django.db import connections

    ctx = multiprocessing.get_context("fork")
    connections.close_all()
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(target, queue, i, args), daemon=True) for i in range(count)]
    for proc in procs:
        proc.start()
    results: dict[int, object] = {}
    try:
        for _ in range(count):
            index, status, value = queue.get(timeout=timeout)
            if status == "error":
                raise AssertionError(f"process {index} failed: {value}")
            results[index] = value
            if on_result:
                on_result(index, value)
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return [results[i] for i in range(count)]
