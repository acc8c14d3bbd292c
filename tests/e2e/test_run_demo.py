"""`make run` on a fresh checkout: the printed walkthrough works when pasted into a shell,
the printed admin login works, and Ctrl-C stops all four processes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess

import pytest
import requests

from tests.support import processes

pytestmark = pytest.mark.e2e


def _commands(walkthrough: str) -> list[str]:
    """The indented shell commands of the walkthrough, continuation lines joined."""
    commands, current = [], ""
    starts = ("export ", "RESPONSE=", "curl ", "CHARGE_ID=", "echo ")
    for line in walkthrough.splitlines():
        stripped = line.strip()
        if current:
            current += "\n" + line
        elif line.startswith("   ") and stripped.startswith(starts):
            current = line
        else:
            continue
        if not stripped.endswith("\\"):
            commands.append(current.strip())
            current = ""
    return commands


@pytest.fixture
def demo(tmp_path):
    """run_demo.py with its own var/ directory (fresh database and keys) and free ports."""
    web_port, sandbox_port = processes.free_port(), processes.free_port()
    env = {"SERVICE_VAR_DIR": str(tmp_path), "DATABASE_URL": None, "REDIS_URL": None,
           "FIELD_ENCRYPTION_KEYS": None, "SANDBOX_API_KEY": None, "SANDBOX_WEBHOOK_SECRET": None}
    demo = processes.start("run_demo", processes.python("scripts/run_demo.py", "--web-port", str(web_port),
                                                        "--sandbox-port", str(sandbox_port)),
                           env=env, stop_signal=signal.SIGINT, log_dir=tmp_path)
    yield demo
    demo.stop(timeout=30)
    # Its children run in their own sessions: make sure none outlives a failed test.
    for pid in re.findall(r"\(pid (\d+)\)", demo.log()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pid), signal.SIGKILL)


def test_make_run_walkthrough_works_from_the_printed_commands(demo, tmp_path):
    processes.wait_until(lambda: "Press Ctrl-C" in demo.log(), timeout=90, what="the walkthrough",
                         process=demo)
    output = demo.log(tail=100_000)
    web = re.search(r"web server\s+(http://\S+)", output).group(1)
    password = re.search(r"user: admin\s+password: (\S+)", output).group(1)
    commands = _commands(output)
    assert [c.split()[0].split("=")[0] for c in commands] == ["export", "RESPONSE", "echo", "curl",
                                                               "CHARGE_ID", "curl"]
    # Steps 1 and 2 as printed; step 3 as printed, repeated until the webhook has landed.
    fetch = commands[-1]
    script = "\n".join([
        "set -e", *commands[:4], 'echo "=== step 3"', commands[4],
        f"for i in $(seq 100); do OUT=$({fetch}); "
        'case "$OUT" in *\'"status":"succeeded"\'*) echo "$OUT"; exit 0;; esac; sleep 0.1; done',
        'echo "never succeeded: $OUT"; exit 1',
    ])
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr + demo.log()
    step1, rest = result.stdout.split("HTTP/1.1", 1)
    assert '"status":"pending"' in step1
    replay_headers, step3 = rest.split("=== step 3")
    assert re.search(r"(?im)^idempotent-replayed: true", replay_headers)
    assert '"status":"succeeded"' in step3 and '"provider":"sandbox"' in step3

    # /metrics on the web server also shows what the worker did (a shared multiprocess
    # directory): the webhook that settled the charge was processed there.
    metrics = requests.get(f"{web}/metrics", timeout=10).text
    processed = [line for line in metrics.splitlines() if line.startswith("webhook_processing_total{")
                 and 'outcome="processed"' in line and 'provider="sandbox"' in line]
    assert processed and float(processed[0].rsplit(" ", 1)[1]) >= 1, \
        [line for line in metrics.splitlines() if line.startswith("webhook_")]

    session = requests.Session()
    session.get(f"{web}/admin/login/", timeout=10)
    login = session.post(f"{web}/admin/login/?next=/admin/", timeout=10, data={
        "username": "admin", "password": password, "next": "/admin/",
        "csrfmiddlewaretoken": session.cookies["csrftoken"]})
    assert login.status_code == 200 and "Site administration" in login.text

    code = demo.stop(timeout=30)
    assert code == 0, demo.log()
    log = demo.log()
    for name in ("web", "worker", "relay", "sandbox"):
        assert re.search(rf"{name} stopped \(exit status 0\)", log), log
    for pid in re.findall(r"\(pid (\d+)\)", log):
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
