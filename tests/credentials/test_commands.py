"""rotate_credential and configure_provider: happy paths and bad input (one line, exit 1, no change)."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from integrations.credentials import credential_value, credential_values_valid
from integrations.models import Credential, Provider

ROOT = Path(__file__).resolve().parents[2]


def run_command(*args, stdin=""):
    return call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())


def test_rotate_credential_reads_stdin(provider, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("sk_test_from_stdin\n"))
    out = io.StringIO()
    call_command("rotate_credential", "sandbox", "api_key", stdout=out)
    assert credential_value(provider=provider, purpose="api_key") == "sk_test_from_stdin"
    assert "sk_test_from_stdin" not in out.getvalue()


def test_rotate_credential_from_env_with_grace(provider, monkeypatch):
    monkeypatch.setenv("NEW_WEBHOOK_SECRET", "whsec_rotated_value")
    call_command("rotate_credential", "sandbox", "webhook_secret", "--from-env", "NEW_WEBHOOK_SECRET",
                 "--grace", "2h", stdout=io.StringIO())
    valid = credential_values_valid(provider=provider, purpose="webhook_secret")
    assert valid[0] == "whsec_rotated_value" and len(valid) == 2


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["nope", "api_key"], "x", "unknown provider"),
        (["sandbox", "password"], "x", "unknown purpose"),
        (["sandbox", "api_key"], "\n", "empty value"),
        (["sandbox", "api_key", "--grace", "soon"], "x", "--grace"),
        (["sandbox", "api_key", "--from-env", "DOES_NOT_EXIST_VAR"], "", "DOES_NOT_EXIST_VAR"),
    ],
)
def test_rotate_credential_bad_input_changes_nothing(provider, monkeypatch, args, stdin, message):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    before = list(Credential.objects.values_list("pk", "ciphertext", "active_until"))
    with pytest.raises(CommandError, match=message):
        call_command("rotate_credential", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert list(Credential.objects.values_list("pk", "ciphertext", "active_until")) == before


def test_configure_provider_creates_then_updates(db):
    call_command("configure_provider", "pay", "--kind", "stripe", "--base-url", "https://api.stripe.com",
                 stdout=io.StringIO())
    provider = Provider.objects.get(slug="pay")
    assert (provider.kind, provider.enabled, provider.environment) == ("stripe", True, "sandbox")
    call_command("configure_provider", "pay", "--kind", "stripe", "--base-url", "https://api.stripe.com",
                 "--name", "Stripe", "--environment", "production", "--disable", stdout=io.StringIO())
    provider.refresh_from_db()
    assert (provider.name, provider.enabled, provider.environment) == ("Stripe", False, "production")
    assert Provider.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pay", "--kind", "paypalish", "--base-url", "https://x.test"], "unknown kind"),
        (["pay", "--kind", "stripe", "--base-url", "not a url"], "base_url"),
        (["pay", "--kind", "stripe", "--base-url", "https://x.test", "--environment", "staging"],
         "unknown environment"),
        (["Bad Slug!", "--kind", "stripe", "--base-url", "https://x.test"], "slug"),
    ],
)
def test_configure_provider_bad_input_changes_nothing(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("configure_provider", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not Provider.objects.exists()


def test_bad_input_from_the_shell_is_one_line_and_exit_1(tmp_path):
    """Through manage.py itself: exit status 1 and no traceback."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    result = subprocess.run(
        [sys.executable, "manage.py", "rotate_credential", "ghost", "api_key"],
        cwd=ROOT, env=env, input="value\n", capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["CommandError: unknown provider 'ghost'"]


@pytest.mark.parametrize(
    "argv",
    [
        ["rotate_credential", "sandbox", "api_key", "--environment", "staging"],
        ["configure_provider", "pay", "--kind", "stripe"],
        ["rotate_encryption_key", "--batch-size", "abc"],
        ["rotate_credential", "sandbox", "api_key", "--grace", "99999999999d"],
        ["create_api_key", "shop", "--label", "x" * 200],
    ],
)
def test_argument_errors_from_the_shell_are_one_line_and_exit_1(tmp_path, argv):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "manage.py", "configure_provider", "sandbox", "--kind", "sandbox",
                    "--base-url", "http://127.0.0.1:8099"], cwd=ROOT, env=env, check=True, capture_output=True)
    result = subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=env, input="value\n",
                            capture_output=True, text=True)
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("CommandError: "), result.stderr


@pytest.mark.parametrize("value", ["sk_live_caf\u00e9", "sk_live_\u20ac", "a\tb", "a\x00b"])
def test_credential_values_must_be_printable_ascii(provider, monkeypatch, value):
    monkeypatch.setattr("sys.stdin", io.StringIO(value))
    with pytest.raises(CommandError, match="printable ASCII"):
        call_command("rotate_credential", "sandbox", "api_key", stdout=io.StringIO(), stderr=io.StringIO())
    assert credential_value(provider=provider, purpose="api_key") == "sk_test_provider_secret_123"


def test_a_pem_public_key_with_line_breaks_is_accepted(provider, monkeypatch):
    pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
    monkeypatch.setattr("sys.stdin", io.StringIO(pem + "\n"))
    call_command("rotate_credential", "sandbox", "webhook_public_key", stdout=io.StringIO())
    assert credential_value(provider=provider, purpose="webhook_public_key") == pem
