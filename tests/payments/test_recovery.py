"""Crash recovery: a process dying between the provider call and storing the outcome."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django_q.models import Schedule

from idempotency.models import IdempotencyRecord
from payments import services
from payments.models import Charge
from payments.tasks import complete_stale

pytestmark = pytest.mark.django_db


class ProcessKilled(BaseException):
    """Stands in for SIGKILL: nothing in the request path catches a BaseException, so no
    cleanup runs and the idempotency lock stays held, as after a real crash."""


@pytest.fixture
def crash_after_provider_call(monkeypatch):
    """Make the next charge outcome store die, after the provider has charged."""
    real = services.charge_store_outcome
    armed = {"on": True}

    def dying(**kwargs):
        if armed["on"]:
            armed["on"] = False
            raise ProcessKilled()
        return real(**kwargs)

    monkeypatch.setattr(services, "charge_store_outcome", dying)


def test_retry_after_a_crash_finishes_with_one_provider_charge(post_charge, fake_provider,
                                                               crash_after_provider_call):
    with pytest.raises(ProcessKilled):
        post_charge(key="crash")
    charge = Charge.objects.get()
    assert charge.status == "pending"
    assert len(fake_provider.charges) == 1  # the provider did charge

    # While the dead request's lock is fresh, a retry is told to wait.
    busy = post_charge(key="crash")
    assert busy.status_code == 409 and busy.json()["error"]["type"] == "idempotency_key_in_use"

    with override_settings(IDEMPOTENCY_LOCK_TIMEOUT_SECONDS=0):
        retry = post_charge(key="crash")
    assert retry.status_code == 201
    assert retry.json()["id"] == charge.id and retry.json()["status"] == "succeeded"
    assert len(fake_provider.charges) == 1
    assert Charge.objects.count() == 1
    sent_keys = [r["key"] for r in fake_provider.requests if r["path"] == "/v1/charges"]
    assert sent_keys == [charge.outbound_idempotency_key] * 2
    assert IdempotencyRecord.objects.get().response_status == 201
    assert post_charge(key="crash")["Idempotent-Replayed"] == "true"


def test_completer_finishes_a_crashed_charge_with_one_provider_charge(post_charge, fake_provider,
                                                                      crash_after_provider_call):
    with pytest.raises(ProcessKilled):
        post_charge(key="crash")
    charge = Charge.objects.get()
    with override_settings(PAYMENTS_COMPLETER_STALE_SECONDS=3600):
        assert complete_stale() == {"charges": 0, "refunds": 0, "still_pending": 0, "errors": 0}  # not stale yet
    with override_settings(PAYMENTS_COMPLETER_STALE_SECONDS=0):
        assert complete_stale()["charges"] == 1
    charge.refresh_from_db()
    assert charge.status == "succeeded" and charge.completion_attempts == 1
    assert charge.provider_charge_id in fake_provider.charges
    assert len(fake_provider.charges) == 1
    assert {r["key"] for r in fake_provider.requests} == {charge.outbound_idempotency_key}
    assert list(charge.history.values_list("source", flat=True)) == ["api", "completer"]

    # The client's retry now finds the finished charge: 201, and no further provider call.
    calls = len(fake_provider.requests)
    with override_settings(IDEMPOTENCY_LOCK_TIMEOUT_SECONDS=0):
        retry = post_charge(key="crash")
    assert retry.status_code == 201 and retry.json()["id"] == charge.id
    assert len(fake_provider.requests) == calls


@override_settings(PAYMENTS_COMPLETER_STALE_SECONDS=0)
def test_completer_retrieves_a_charge_whose_provider_id_is_known(post_charge, fake_provider):
    fake_provider.mode = "down"
    post_charge(key="x")
    charge = Charge.objects.get()
    fake_provider.mode = "ok"
    # Simulate the provider having answered "pending" with its id earlier.
    fake_provider.charges["ch_fake_known"] = {"id": "ch_fake_known", "status": "succeeded", "amount": 1500,
                                              "currency": "usd", "amount_refunded": 0, "_key": ""}
    Charge.objects.filter(pk=charge.pk).update(provider_charge_id="ch_fake_known")
    assert complete_stale()["charges"] == 1
    assert Charge.objects.get().status == "succeeded"
    assert fake_provider.requests[-1]["method"] == "GET"


@override_settings(PAYMENTS_COMPLETER_STALE_SECONDS=0)
def test_completer_leaves_charges_pending_while_the_provider_is_down(post_charge, fake_provider):
    fake_provider.mode = "down"
    post_charge(key="x")
    assert complete_stale() == {"charges": 0, "refunds": 0, "still_pending": 1, "errors": 0}
    assert Charge.objects.get().status == "pending"
    fake_provider.mode = "ok"
    assert complete_stale()["charges"] == 1
    assert len(fake_provider.charges) == 1


def test_completer_schedule_exists_after_migrate():
    assert Schedule.objects.get(name="payments.complete_stale").func == "payments.tasks.complete_stale"


def test_crash_before_the_provider_call_resumes_without_a_second_charge_row(post_charge, fake_provider,
                                                                            monkeypatch):
    def dying(**kwargs):
        raise ProcessKilled()

    monkeypatch.setattr(services, "charge_settle", dying)
    with pytest.raises(ProcessKilled):
        post_charge(key="early")
    assert Charge.objects.get().status == "pending" and not fake_provider.requests
    monkeypatch.undo()
    with override_settings(IDEMPOTENCY_LOCK_TIMEOUT_SECONDS=0):
        retry = post_charge(key="early")
    assert retry.status_code == 201 and Charge.objects.count() == 1
    assert len(fake_provider.charges) == 1


@override_settings(PAYMENTS_COMPLETER_STALE_SECONDS=0)
def test_completer_finishes_a_refund_left_pending_by_an_outage(post_charge, fake_provider, api_client):
    charge = post_charge().json()
    fake_provider.mode = "down"
    response = api_client.post(f"/api/v1/charges/{charge['id']}/refunds", data={"amount": 200}, format="json",
                               HTTP_IDEMPOTENCY_KEY="refund-later")
    assert response.status_code == 503
    fake_provider.mode = "ok"
    assert complete_stale()["refunds"] == 1
    stored = Charge.objects.get()
    assert stored.amount_refunded == 200 and stored.status == "partially_refunded"
    assert len(fake_provider.refunds) == 1
    # The client's retry finds the refund done: 201 with it, and no second provider refund.
    retry = api_client.post(f"/api/v1/charges/{charge['id']}/refunds", data={"amount": 200}, format="json",
                            HTTP_IDEMPOTENCY_KEY="refund-later")
    assert retry.status_code == 201 and retry.json()["status"] == "succeeded"
    assert len(fake_provider.refunds) == 1


def test_one_broken_charge_does_not_stop_the_completer(db, monkeypatch):
    """An unexpected error settling one row is logged and counted; the others still settle."""
    from payments import services

    calls = []

    def settle(*, charge, source):
        calls.append(charge.pk)
        if len(calls) == 1:
            raise UnicodeEncodeError("latin-1", "€", 0, 1, "cannot encode")
        charge.status = "succeeded"
        return charge

    class Row:
        def __init__(self, pk):
            self.pk = pk

    assert services._complete_one(settle, charge=Row("ch_1")) == "errors"
    assert services._complete_one(settle, charge=Row("ch_2")) == "done"
