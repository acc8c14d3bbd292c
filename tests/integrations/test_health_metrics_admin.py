"""Circuit states in /health/ready, /metrics (single and multi process), and the admin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from integrations.circuit import CLOSED, OPEN, circuit_status
from integrations.client import ProviderClient
from integrations.models import OutboundCall, Provider
from tests.integrations.conftest import SECRET
from tests.support.local_server import LocalServer, Reply

ROOT = Path(__file__).resolve().parents[2]


def open_circuit(provider):
    with LocalServer(lambda r: Reply(500)) as server:
        Provider.objects.filter(pk=provider.pk).update(base_url=server.url)
        provider.refresh_from_db()
        for _ in range(provider.circuit_failure_threshold):
            ProviderClient(provider).request("GET", "/v1/x")
    assert circuit_status(provider=provider).state == OPEN


@pytest.fixture
def two_providers(make_provider):
    return (make_provider("http://127.0.0.1:9", slug="alpha", circuit_failure_threshold=1, max_attempts=1),
            make_provider("http://127.0.0.1:9", slug="beta", circuit_failure_threshold=1, max_attempts=1))


def test_ready_reports_each_circuit_and_stays_ready_with_one_open(client, two_providers):
    alpha, _ = two_providers
    open_circuit(alpha)

    response = client.get("/health/ready")

    body = response.json()
    providers = body["checks"]["providers"]
    assert response.status_code == 200, body
    assert providers["alpha"]["circuit"] == "open" and providers["alpha"]["consecutive_failures"] == 1
    assert providers["alpha"]["opened_times"] == 1 and providers["alpha"]["changed"]
    assert providers["beta"]["circuit"] == "closed"


def test_ready_fails_when_every_circuit_is_open(client, two_providers, settings):
    for provider in two_providers:
        open_circuit(provider)

    response = client.get("/health/ready")

    assert response.status_code == 503
    assert "providers" in response.json()["failed"]
    settings.INTEGRATIONS_NOT_READY_WHEN_ALL_CIRCUITS_OPEN = False
    assert client.get("/health/ready").status_code == 200


def test_metrics_expose_calls_latency_retries_and_circuit_state(client, make_provider):
    with LocalServer(script=[Reply(503), Reply(200, json={})]) as server:
        provider = make_provider(server.url, slug="metered")
        ProviderClient(provider, sleep=lambda s: None).request("GET", "/v1/x")

    response = client.get("/metrics")

    text = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert 'outbound_requests_total{outcome="ok",provider="metered"}' in text
    assert 'outbound_request_duration_seconds_bucket{le="0.01",outcome="ok",provider="metered"}' in text
    assert 'outbound_retries_total{provider="metered"}' in text
    assert 'outbound_circuit_state{provider="metered"} 0.0' in text
    assert "outbound_rate_limit_wait_seconds_total" in text


def test_metrics_add_up_several_processes_in_multiprocess_mode(client, tmp_path, monkeypatch):
    """Two worker processes count into PROMETHEUS_MULTIPROC_DIR; /metrics reports the sum."""
    script = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup();"
        "from integrations import metrics; metrics.requests_total.labels('multi', 'ok').inc(3)"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    text = client.get("/metrics").content.decode()

    assert 'outbound_requests_total{outcome="ok",provider="multi"} 6.0' in text


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def test_admin_shows_circuit_state_and_resets_it(admin_client, two_providers):
    alpha, beta = two_providers
    open_circuit(alpha)

    listing = admin_client.get(reverse("admin:integrations_provider_changelist")).content.decode()
    assert "open (1 failing)" in listing
    detail = admin_client.get(reverse("admin:integrations_provider_change", args=[alpha.pk])).content.decode()
    assert "consecutive failure(s)" in detail and "last error HTTP_500" in detail
    assert "1 calls, 100% failed" in detail

    response = admin_client.post(reverse("admin:integrations_provider_changelist"),
                                 {"action": "reset_circuits", "_selected_action": [alpha.pk]}, follow=True)

    assert response.status_code == 200
    assert circuit_status(provider=alpha).state == CLOSED


def test_admin_lists_outbound_calls_with_filters_and_no_secret(admin_client, make_provider):
    provider = make_provider("http://127.0.0.1:9", slug="gamma", max_attempts=1)
    ProviderClient(provider).request("GET", f"/v1/x?key={SECRET}", operation="thing.get")
    assert OutboundCall.objects.count() == 1
    url = reverse("admin:integrations_outboundcall_changelist")

    page = admin_client.get(url).content.decode()
    filtered = admin_client.get(url, {"error_code": "ECONN", "provider__id__exact": provider.pk}).content.decode()
    call = OutboundCall.objects.get()
    detail = admin_client.get(reverse("admin:integrations_outboundcall_change", args=[call.pk])).content.decode()

    assert "thing.get" in page and "ECONN" in filtered and "/v1/x" in detail
    for html in (page, filtered, detail):
        assert SECRET not in html
