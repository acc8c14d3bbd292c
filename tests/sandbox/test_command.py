"""`manage.py run_sandbox` as its own process, configured from options and environment."""

from __future__ import annotations

import signal

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.support import processes


def test_run_sandbox_serves_in_its_own_process_and_stops_on_sigterm(tmp_path):
    env = {"SANDBOX_API_KEY": "sk_test_from_env", "SANDBOX_WEBHOOK_SECRET": "whsec_c2VjcmV0"}
    sandbox = processes.start_http_service(
        "sandbox", lambda fd: processes.manage("run_sandbox", "--fd", str(fd)),
        ready_path="/_control/health", env=env, log_dir=tmp_path)
    try:
        body = {"amount": 100, "currency": "usd", "source": "tok_visa"}
        assert requests.post(f"{sandbox.url}/v1/charges", json=body, timeout=5).status_code == 401
        ok = requests.post(f"{sandbox.url}/v1/charges", json=body, timeout=5,
                           headers={"Authorization": "Bearer sk_test_from_env"})
        assert ok.status_code == 200 and ok.json()["status"] == "succeeded"
    finally:
        code = sandbox.stop(timeout=10)
    assert code == 0, sandbox.log()
    log = sandbox.log()
    assert "listening on" in log and "Sandbox provider stopped." in log
    assert "sk_test_from_env" not in log and "whsec_c2VjcmV0" not in log
    assert sandbox.stop_signal == signal.SIGTERM


@pytest.mark.parametrize("options, message", [
    ({"webhook_url": "http://127.0.0.1:9/hooks/"}, "needs a secret"),
    ({"webhook_url": "http://127.0.0.1:9/hooks/", "webhook_secret": "nope"}, "whsec_"),
    ({"webhook_max_attempts": 0}, "at least 1"),
])
def test_run_sandbox_refuses_bad_configuration(options, message, monkeypatch):
    monkeypatch.delenv("SANDBOX_WEBHOOK_SECRET", raising=False)
    with pytest.raises(CommandError, match=message):
        call_command("run_sandbox", "--port", "0", **options)
