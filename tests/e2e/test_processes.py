"""tests/support/processes.py: children are stopped their way, and nothing is left behind."""

from __future__ import annotations

import os
import signal
import sys
import textwrap

import pytest

from tests.support import processes

# A parent that ignores SIGTERM and starts a grandchild, printing both pids.
STUBBORN = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("pids", child.pid, flush=True)
    time.sleep(600)
""")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_child_that_ignores_its_stop_signal_is_killed_with_its_whole_group(tmp_path):
    proc = processes.start("stubborn", [sys.executable, "-c", STUBBORN], log_dir=tmp_path)
    line = processes.wait_until(lambda: "pids" in proc.log() and proc.log(), timeout=10,
                                what="the grandchild", process=proc)
    grandchild = int(line.split()[1])
    code = proc.stop(timeout=0.5)
    assert code == -signal.SIGKILL
    processes.wait_until(lambda: _gone(grandchild), timeout=5, what="the grandchild to die")


def test_a_child_stopped_by_its_signal_exits_cleanly(tmp_path):
    script = "import signal, sys, time\nsignal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n" \
             "print('ready', flush=True)\ntime.sleep(600)"
    proc = processes.start("polite", [sys.executable, "-c", script], stop_signal=signal.SIGINT,
                           log_dir=tmp_path)
    processes.wait_until(lambda: "ready" in proc.log(), timeout=10, what="ready", process=proc)
    assert proc.stop(timeout=10) == 0


def test_processes_are_stopped_when_the_block_fails(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), processes.Processes(tmp_path) as procs:
        proc = procs.add(processes.start("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"],
                                         log_dir=tmp_path))
        raise RuntimeError("boom")
    assert not proc.alive()


def test_a_service_that_dies_before_it_is_ready_fails_with_its_log(tmp_path):
    with pytest.raises(RuntimeError, match="no such command here"):
        processes.start_http_service(
            "broken", lambda fd: [sys.executable, "-c", "import sys; sys.exit('no such command here')"],
            ready_path="/", log_dir=tmp_path, timeout=10)


def test_a_service_gets_a_port_known_before_it_starts(tmp_path):
    sock = processes.listening_socket()
    port = sock.getsockname()[1]
    proc = processes.start_http_service(
        "sandbox", lambda fd: processes.manage("run_sandbox", "--fd", str(fd)),
        ready_path="/_control/health", log_dir=tmp_path, sock=sock)
    try:
        assert proc.url == f"http://127.0.0.1:{port}"
    finally:
        assert proc.stop() == 0
