"""/health/live and /health/ready."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_live(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_with_database_up(client, db):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] == "ok"


def test_ready_is_503_naming_the_database_when_it_points_at_nothing(tmp_path):
    """A real process whose DATABASE_URL points at a port where nothing listens."""
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/health/ready');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings",
           "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing", "SERVICE_VAR_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 503
    assert "database" in outcome["body"]["failed"]
    assert outcome["body"]["status"] == "unavailable"
    # Connection errors can carry the DSN; the body names the failure, not the URL.
    assert "127.0.0.1:1" not in json.dumps(outcome["body"])


def test_other_methods_are_a_json_405_not_a_csrf_page(db):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    for path in ("/health/live", "/health/ready"):
        response = client.post(path)
        assert response.status_code == 405
        assert response.json()["error"]["type"] == "method_not_allowed"
