"""Per-attempt log lines and per-call records: complete, and never holding a secret."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
import responses
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from config.request_id import bound
from integrations.client import ProviderClient
from integrations.credentials import credential_rotate
from integrations.models import OutboundCall
from integrations.records import outbound_calls_purge
from integrations.tasks import PURGE_SCHEDULE_NAME, purge_outbound_records
from tests.integrations.conftest import SECRET

BASE = "https://provider.test"
OAUTH_SECRET = "cs_OAUTH_CLIENT_SECRET_77"
ACCESS_TOKEN = "at_ACCESS_TOKEN_SECRET_88"
SIGNING_SECRET = "sign_SIGNING_SECRET_99"


def _everything_logged(caplog) -> str:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        lines.append(json.dumps({k: v for k, v in record.__dict__.items() if k not in {"args", "exc_info"}},
                                default=str))
    return "\n".join(lines)


def _everything_logged_one(record) -> str:
    return record.getMessage() + json.dumps(
        {k: v for k, v in record.__dict__.items() if k not in {"args", "exc_info"}}, default=str)


@responses.activate
def test_one_log_line_per_attempt_with_the_request_id_and_no_query_values(make_provider, caplog):
    provider = make_provider(BASE)
    responses.get(f"{BASE}/v1/addresses", status=503)
    responses.get(f"{BASE}/v1/addresses", json={"ok": True})
    caplog.set_level(logging.INFO, logger="integrations.outbound")

    with bound("req-abc-123"):
        ProviderClient(provider, sleep=lambda s: None).request(
            "GET", "/v1/addresses?email=someone@example.com", params={"address": "10 Downing St"},
            operation="address.verify")

    lines = [r for r in caplog.records if r.name == "integrations.outbound"]
    assert [r.attempt for r in lines] == [1, 2]
    first, second = lines
    assert first.request_id == "req-abc-123" and first.provider == provider.slug
    assert first.method == "GET" and first.path == "/v1/addresses"
    assert first.query_keys == ["address", "email"]
    assert first.status == 503 and first.error_code == "HTTP_503" and first.levelname == "WARNING"
    assert second.status == 200 and second.error_code is None and second.latency_ms >= 0
    assert first.operation == "address.verify"
    text = _everything_logged(caplog)
    assert "someone@example.com" not in text and "Downing" not in text


@responses.activate
def test_no_secret_in_logs_or_call_records_for_any_auth_scheme(make_provider, caplog):
    caplog.set_level(logging.DEBUG)
    responses.post(f"{BASE}/oauth/token", json={"access_token": ACCESS_TOKEN, "expires_in": 3600})
    responses.post(f"{BASE}/v1/charges", status=500, json={"error": "boom"})
    responses.post(f"{BASE}/v1/charges", status=401, json={"error": "bad key"})

    bearer = make_provider(BASE)
    oauth = make_provider(BASE, auth_scheme="oauth2_client_credentials", oauth_token_url="/oauth/token")
    credential_rotate(provider=oauth, purpose="oauth_client_id", value="client-id")
    credential_rotate(provider=oauth, purpose="oauth_client_secret", value=OAUTH_SECRET)
    signed = make_provider(BASE, auth_scheme="hmac")
    credential_rotate(provider=signed, purpose="signing_secret", value=SIGNING_SECRET)
    keyed = make_provider(BASE, auth_scheme="api_key_header")

    for provider in (bearer, oauth, signed, keyed):
        ProviderClient(provider, sleep=lambda s: None).request(
            "POST", f"/v1/charges?api_key={SECRET}", json={"card": "4242"}, idempotency_key="k-1")

    sent = [call.request for call in responses.calls]
    assert any(r.headers.get("Authorization") == f"Bearer {SECRET}" for r in sent)  # it was really used
    assert any(r.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}" for r in sent)
    text = _everything_logged(caplog)
    rows = json.dumps(list(OutboundCall.objects.values()), default=str)
    for secret in (SECRET, OAUTH_SECRET, ACCESS_TOKEN, SIGNING_SECRET, "4242"):
        leaking = [f"{r.name}: {r.getMessage()}" for r in caplog.records if secret in _everything_logged_one(r)]
        assert secret not in text, leaking
        assert secret not in rows
    assert OutboundCall.objects.count() == 4


@responses.activate
def test_each_call_is_recorded_once_with_its_outcome(make_provider):
    provider = make_provider(BASE)
    responses.get(f"{BASE}/v1/x", status=502)
    responses.get(f"{BASE}/v1/x", json={})

    with bound("req-77"):
        ProviderClient(provider, sleep=lambda s: None).request("GET", "/v1/x?q=1", operation="thing.get")

    call = OutboundCall.objects.get()
    assert (call.provider, call.operation, call.method, call.path) == (provider, "thing.get", "GET", "/v1/x")
    assert call.ok and call.status == 200 and call.error_code == "" and call.attempts == 2
    assert call.request_id == "req-77" and call.latency_ms >= 0


def test_circuit_open_calls_are_recorded_too(make_provider, settings):
    provider = make_provider("http://127.0.0.1:9", circuit_failure_threshold=1, max_attempts=1)
    ProviderClient(provider).request("GET", "/v1/x")
    ProviderClient(provider).request("GET", "/v1/x")

    assert list(OutboundCall.objects.order_by("created", "pk").values_list("error_code", "attempts")) == [
        ("ECONN", 1), ("CIRCUIT_OPEN", 0)]


def test_recording_can_be_switched_off(make_provider, settings):
    settings.INTEGRATIONS_RECORD_CALLS = False
    provider = make_provider("http://127.0.0.1:9", max_attempts=1)
    ProviderClient(provider).request("GET", "/v1/x")
    assert not OutboundCall.objects.exists()


def _call(provider, age_days: float) -> OutboundCall:
    return OutboundCall.objects.create(provider=provider, method="GET", path="/x", ok=True, status=200, attempts=1,
                                       latency_ms=1, created=timezone.now() - timedelta(days=age_days))


def test_purge_deletes_records_older_than_the_retention(make_provider, settings):
    settings.INTEGRATIONS_OUTBOUND_CALL_RETENTION_DAYS = 7
    provider = make_provider(BASE)
    old = [_call(provider, 8) for _ in range(3)]
    recent = _call(provider, 6)

    assert outbound_calls_purge(batch_size=2) == 3
    assert list(OutboundCall.objects.all()) == [recent]
    assert not OutboundCall.objects.filter(pk__in=[c.pk for c in old]).exists()


def test_purge_task_reports_what_it_deleted(make_provider):
    provider = make_provider(BASE)
    _call(provider, 30)
    assert purge_outbound_records()["outbound_calls"] == 1


@pytest.mark.django_db(transaction=True)
def test_purge_schedule_exists_after_migrate_and_is_not_duplicated():
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)
    schedule = Schedule.objects.get(name=PURGE_SCHEDULE_NAME)
    assert schedule.func == "integrations.tasks.purge_outbound_records"
    assert Schedule.objects.filter(name=PURGE_SCHEDULE_NAME).count() == 1


@pytest.mark.django_db(transaction=True)
def test_batch_mode_writes_the_same_records_without_a_commit_per_call(make_provider, settings):
    from integrations.records import flush_records

    settings.INTEGRATIONS_RECORD_CALLS = "batch"
    provider = make_provider("http://127.0.0.1:9", max_attempts=1, circuit_failure_threshold=100)
    for _ in range(3):
        ProviderClient(provider).request("GET", f"/v1/x?key={SECRET}", operation="thing.get")

    flush_records()

    rows = list(OutboundCall.objects.values_list("operation", "path", "error_code"))
    assert rows == [("thing.get", "/v1/x", "ECONN")] * 3
    assert flush_records() == 0
