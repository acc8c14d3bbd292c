"""The design's idempotency table, row by row, over the real API (POST /api/v1/charges)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule
from rest_framework.test import APIClient

from api.models import api_key_create
from idempotency.models import IdempotencyRecord, RecoveryPoint
from idempotency.services import idempotency_claim, request_fingerprint
from idempotency.tasks import purge_expired
from payments.models import Charge

from .conftest import CHARGE

pytestmark = pytest.mark.django_db


def error_type(response) -> str:
    return response.json()["error"]["type"]


def test_no_key_header_is_400_idempotency_key_missing(post_charge, fake_provider):
    response = post_charge(key=False)
    assert response.status_code == 400
    assert error_type(response) == "idempotency_key_missing"
    assert not Charge.objects.exists() and not IdempotencyRecord.objects.exists()
    assert not fake_provider.requests


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_empty_or_too_long_key_is_400_idempotency_key_invalid(post_charge, key):
    response = post_charge(key=key)
    assert response.status_code == 400
    assert error_type(response) == "idempotency_key_invalid"
    assert not IdempotencyRecord.objects.exists()


def test_a_key_of_255_characters_is_accepted(post_charge):
    assert post_charge(key="k" * 255).status_code == 201


def test_first_request_is_processed_and_its_outcome_stored(post_charge, fake_provider):
    response = post_charge(key="first")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    body = response.json()
    record = IdempotencyRecord.objects.get(key="first")
    assert record.response_status == 201
    assert json.loads(record.response_body) == body
    assert record.recovery_point == RecoveryPoint.FINISHED and record.locked_at is None
    assert record.resource_id == body["id"]
    assert fake_provider.calls_by_key[Charge.objects.get().outbound_idempotency_key] == 1


def test_same_key_and_body_replays_the_stored_answer(post_charge, fake_provider):
    first = post_charge(key="again")
    # Same JSON with other key order and whitespace: the canonical body is the same.
    reordered = json.dumps(dict(reversed(list(CHARGE.items()))), indent=4)
    second = post_charge(reordered, key="again")
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Charge.objects.count() == 1
    assert len(fake_provider.charges) == 1
    assert sum(fake_provider.calls_by_key.values()) == 1


def test_same_key_with_another_body_is_422_idempotency_key_reused(post_charge):
    assert post_charge(key="reuse").status_code == 201
    response = post_charge({**CHARGE, "amount": 1501}, key="reuse")
    assert response.status_code == 422
    assert error_type(response) == "idempotency_key_reused"
    assert Charge.objects.count() == 1


def test_same_key_on_another_path_is_422(post_charge, api_client):
    charge = post_charge(key="path").json()
    response = api_client.post(f"/api/v1/charges/{charge['id']}/refunds", data=CHARGE, format="json",
                               HTTP_IDEMPOTENCY_KEY="path")
    assert response.status_code == 422
    assert error_type(response) == "idempotency_key_reused"


def test_same_key_with_another_method_is_reused(api_key):
    """Method is part of the fingerprint (only POSTs are decorated, so this is checked at the service)."""
    consumer_id = IdempotencyRecord._meta.get_field("consumer").related_model.objects.get().pk
    post = request_fingerprint(method="POST", path="/api/v1/charges", body={})
    put = request_fingerprint(method="PUT", path="/api/v1/charges", body={})
    assert post != put
    idempotency_claim(consumer_id=consumer_id, key="m", method="POST", path="/api/v1/charges", fingerprint=post)
    from idempotency.exceptions import IdempotencyKeyReused

    with pytest.raises(IdempotencyKeyReused):
        idempotency_claim(consumer_id=consumer_id, key="m", method="PUT", path="/api/v1/charges", fingerprint=put)


def test_same_key_while_the_first_is_executing_is_409_with_retry_after(post_charge, api_client):
    body = json.loads(json.dumps(CHARGE))
    consumer_id = IdempotencyRecord._meta.get_field("consumer").related_model.objects.get().pk
    # The first request has claimed the key and is still running (its lock is fresh).
    idempotency_claim(consumer_id=consumer_id, key="busy", method="POST", path="/api/v1/charges",
                      fingerprint=request_fingerprint(method="POST", path="/api/v1/charges", body=body))
    response = post_charge(key="busy")
    assert response.status_code == 409
    assert error_type(response) == "idempotency_key_in_use"
    assert int(response["Retry-After"]) >= 1
    assert not Charge.objects.exists()


def test_validation_failure_is_not_stored_and_the_key_can_be_used_again(post_charge):
    bad = post_charge({**CHARGE, "amount": 0}, key="fixme")
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "amount"
    assert not IdempotencyRecord.objects.exists()
    good = post_charge({**CHARGE, "amount": 700}, key="fixme")
    assert good.status_code == 201 and good.json()["amount"] == 700
    assert "Idempotent-Replayed" not in good


def test_503_is_not_stored_and_a_retry_resumes_the_same_charge(post_charge, fake_provider):
    fake_provider.mode = "down"
    down = post_charge(key="outage")
    assert down.status_code == 503
    assert error_type(down) == "provider_unavailable"
    record = IdempotencyRecord.objects.get(key="outage")
    assert record.response_status is None and record.locked_at is None
    charge = Charge.objects.get()
    assert charge.status == "pending" and record.resource_id == charge.id

    fake_provider.mode = "ok"
    retry = post_charge(key="outage")
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry
    assert retry.json()["id"] == charge.id and retry.json()["status"] == "succeeded"
    assert Charge.objects.count() == 1
    # Every attempt, failed or not, carried the same outbound key; one charge exists.
    keys = {r["key"] for r in fake_provider.requests}
    assert keys == {charge.outbound_idempotency_key}
    assert len(fake_provider.charges) == 1
    assert post_charge(key="outage")["Idempotent-Replayed"] == "true"


def test_another_consumer_with_the_same_key_is_independent(post_charge):
    _, other_key = api_key_create(consumer_name="other-shop")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    mine = post_charge(key="shared")
    theirs = post_charge(key="shared", client=other)
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert mine.json()["id"] != theirs.json()["id"]
    assert IdempotencyRecord.objects.filter(key="shared").count() == 2


def test_records_past_the_retention_are_purged_and_the_key_is_new_again(post_charge):
    first = post_charge(key="old")
    IdempotencyRecord.objects.update(created=timezone.now() - timedelta(hours=24, seconds=1))
    fresh = post_charge(key="fresh")
    assert purge_expired() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]
    again = post_charge(key="old")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]
    assert post_charge(key="fresh").json() == fresh.json()


@override_settings(IDEMPOTENCY_RETENTION_SECONDS=60)
def test_retention_is_a_setting(post_charge):
    post_charge(key="a")
    IdempotencyRecord.objects.update(created=timezone.now() - timedelta(seconds=61))
    assert purge_expired() == 1


def test_purge_schedule_exists_after_migrate():
    schedule = Schedule.objects.get(name="idempotency.purge_expired")
    assert schedule.func == "idempotency.tasks.purge_expired"
    assert schedule.repeats == -1


def test_decline_is_402_stored_and_replayed_as_402(post_charge, fake_provider):
    declined = post_charge({**CHARGE, "source": "tok_chargeDeclined"}, key="decline")
    assert declined.status_code == 402
    body = declined.json()
    assert body["status"] == "failed" and body["failure_code"] == "generic_decline"
    again = post_charge({**CHARGE, "source": "tok_chargeDeclined"}, key="decline")
    assert again.status_code == 402 and again["Idempotent-Replayed"] == "true"
    assert again.json() == body
    assert sum(fake_provider.calls_by_key.values()) == 1
