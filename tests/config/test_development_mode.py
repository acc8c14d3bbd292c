"""Production behaviour is the default; development mode is asked for, and even then the
machine URLs answer JSON."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_python(tmp_path, code: str, **env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FIELD_ENCRYPTION"))}
    env["SERVICE_VAR_DIR"] = str(tmp_path)
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


def test_debug_is_off_when_the_variable_is_unset(tmp_path):
    result = run_python(tmp_path, "import os; os.environ.pop('DJANGO_DEBUG', None); "
                                  "from config import env; print(env.DEBUG)")
    assert result.stdout.strip() == "False", result.stderr


def test_a_deploy_that_forgets_every_variable_refuses_to_start_and_says_how(tmp_path):
    result = run_python(tmp_path, "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
                                  "django.setup()")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert "DJANGO_DEBUG=1" in result.stderr  # the way to development mode is named
    assert not (tmp_path / "field_encryption_keys").exists()


@pytest.fixture
def debug_mode(settings):
    settings.DEBUG = True
    return settings


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/nothing", "/webhooks/", "/health/nope"])
def test_unknown_machine_urls_are_json_in_development(client, db, debug_mode, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["type"] == "not_found"


def test_a_trailing_slash_names_the_right_url(client, db, debug_mode):
    response = client.get("/api/v1/charges/", HTTP_AUTHORIZATION="Bearer nope")
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "/api/v1/charges " in message and "without the trailing slash" in message


def test_a_missing_slash_on_a_webhook_url_names_the_right_url(client, db, debug_mode):
    response = client.post("/webhooks/sandbox", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert "/webhooks/sandbox/ (with a trailing slash)" in response.json()["error"]["message"]


def test_the_hint_also_holds_in_production_mode(client, db):
    response = client.post("/api/v1/charges/", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert "Did you mean /api/v1/charges " in response.json()["error"]["message"]


def test_other_unknown_urls_keep_django_pages(admin_client, debug_mode):
    response = admin_client.get("/definitely-not-here")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
