"""Production settings refuse to start without what they need, and say which variable to set."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key",
    "DJANGO_ALLOWED_HOSTS": "api.example.test",
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
}


def check(tmp_path, **overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FIELD_ENCRYPTION"))}
    env.update(GOOD)
    env["SERVICE_VAR_DIR"] = str(tmp_path)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def test_production_settings_with_everything_start(tmp_path):
    result = check(tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "django-insecure-dev-only-never-use-in-production"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY"),
        ({"FIELD_ENCRYPTION_KEYS": None}, "FIELD_ENCRYPTION_KEYS"),
        ({"FIELD_ENCRYPTION_KEYS": "not-a-fernet-key"}, "FIELD_ENCRYPTION_KEYS"),
        ({"DJANGO_ALLOWED_HOSTS": None}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"OUTBOUND_CALL_RECORDS": "sometimes"}, "OUTBOUND_CALL_RECORDS"),
    ],
)
def test_production_refuses_to_start_and_names_the_variable(tmp_path, overrides, variable):
    result = check(tmp_path, **overrides)
    assert result.returncode != 0
    assert variable in result.stderr
    # No generated key file in production: keys must come from the environment.
    assert not (tmp_path / "field_encryption_keys").exists()


def test_development_generates_keys_once_and_reuses_them(tmp_path):
    dev = {"DJANGO_DEBUG": "1", "FIELD_ENCRYPTION_KEYS": None, "DJANGO_SECRET_KEY": None}
    assert check(tmp_path, **dev).returncode == 0
    first = (tmp_path / "field_encryption_keys").read_text()
    assert check(tmp_path, **dev).returncode == 0
    assert (tmp_path / "field_encryption_keys").read_text() == first
    Fernet(first.strip())
    assert oct((tmp_path / "field_encryption_keys").stat().st_mode & 0o777) == "0o600"


def commands(tmp_path, **overrides) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FIELD_ENCRYPTION", "SANDBOX_"))}
    env.update(GOOD)
    env["SERVICE_VAR_DIR"] = str(tmp_path)
    env.update(overrides)
    result = subprocess.run([sys.executable, "manage.py", "help", "--commands"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_sandbox_provider_is_not_installed_in_production(tmp_path):
    assert "run_sandbox" not in commands(tmp_path).split()
    assert "run_sandbox" in commands(tmp_path, SANDBOX_ENABLED="1").split()


def test_the_sandbox_provider_is_installed_in_development(tmp_path):
    assert "run_sandbox" in commands(tmp_path, DJANGO_DEBUG="1").split()
