"""The whole flow over real processes: API -> gateway -> sandbox -> webhook -> worker -> charge."""

from __future__ import annotations

import pytest

from payments.models import Charge, ChargeStatusChange
from tests.support.processes import wait_until
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.e2e


def test_a_pending_charge_is_turned_succeeded_by_the_sandbox_webhook(flow):
    created = flow.charge("order-1", source="tok_pending_300")
    assert created.status_code == 201, created.text
    charge = created.json()
    assert charge["status"] == "pending" and charge["provider_charge_id"].startswith("ch_")

    settled = flow.wait_for_charge(charge["id"], "succeeded")
    assert settled["provider_charge_id"] == charge["provider_charge_id"]
    (change,) = ChargeStatusChange.objects.filter(charge_id=charge["id"], to_status="succeeded")
    assert change.source.startswith("webhook:evt_")
    event = WebhookEvent.objects.get(event_id=change.source.removeprefix("webhook:"))
    assert event.type == "charge.succeeded"
    # The worker marks the event processed just after the handler's own commit.
    wait_until(lambda: WebhookEvent.objects.get(pk=event.pk).status == "processed", timeout=10,
               what="the event to be marked processed")
    assert flow.sandbox_stats()["charges"]["total"] == 1


def test_repeating_a_request_replays_it_without_a_second_provider_charge(flow):
    first = flow.charge("order-2")
    again = flow.charge("order-2")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["status"] == "succeeded"
    stats = flow.sandbox_stats()
    assert stats["charges"]["total"] == 1
    assert stats["requests"]["POST /v1/charges"] == {"200": 1}


def test_a_declined_card_is_a_402_with_the_failed_charge(flow):
    response = flow.charge("order-3", source="tok_chargeDeclined")
    assert response.status_code == 402, response.text
    charge = response.json()
    assert charge["status"] == "failed" and charge["failure_code"] in {"generic_decline", "card_declined"}
    assert flow.get_charge(charge["id"])["status"] == "failed"


def test_two_503s_from_the_sandbox_are_retried_into_one_charge(flow):
    flow.faults({"faults": [{"action": "error", "status": 503, "count": 2, "method": "POST",
                             "path": "/v1/charges"}]})
    response = flow.charge("order-4")
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "succeeded"
    stats = flow.sandbox_stats()
    assert stats["requests"]["POST /v1/charges"] == {"503": 2, "200": 1}
    assert stats["charges"]["total"] == 1
    assert len(stats["charges"]["by_idempotency_key"]) == 1


def test_a_dropped_response_is_recovered_by_the_gateways_retry_with_the_same_key(flow):
    flow.faults({"faults": [{"action": "drop", "method": "POST", "path": "/v1/charges"}]})
    response = flow.charge("order-5")
    assert response.status_code == 201, response.text
    stats = flow.sandbox_stats()
    assert stats["charges"]["total"] == 1 and stats["idempotent_replays"] == 1
    assert response.json()["provider_charge_id"] in str(flow.stack.sandbox_api(
        "GET", f"/v1/charges/{response.json()['provider_charge_id']}").json())


def test_responses_dropped_on_every_attempt_then_a_client_retry_makes_one_charge(flow):
    flow.faults({"faults": [{"action": "drop", "count": 3, "method": "POST", "path": "/v1/charges"}]})
    lost = flow.charge("order-6")
    assert lost.status_code == 503, lost.text
    assert lost.json()["error"]["type"] == "provider_unavailable"
    assert flow.sandbox_stats()["charges"]["total"] == 1  # made, but the gateway never heard

    retry = flow.charge("order-6")
    assert retry.status_code == 201, retry.text
    assert retry.json()["status"] == "succeeded"
    stats = flow.sandbox_stats()
    assert stats["charges"]["total"] == 1
    assert list(stats["charges"]["by_idempotency_key"].values()) == [1]
    assert Charge.objects.count() == 1


def test_duplicated_webhooks_are_processed_once(flow):
    flow.faults({"faults": [{"action": "webhook_duplicate"}]})
    charge = flow.charge("order-7", source="tok_pending_200").json()
    flow.wait_for_charge(charge["id"], "succeeded")

    def both_delivered():
        log = flow.sandbox_stats()["webhooks"]["log"]
        return len([entry for entry in log if entry["status"] == 200]) == 2

    wait_until(both_delivered, timeout=10, what="the duplicate delivery")
    assert WebhookEvent.objects.filter(type="charge.succeeded").count() == 1
    assert ChargeStatusChange.objects.filter(charge_id=charge["id"], to_status="succeeded").count() == 1


def test_reordered_webhooks_never_move_a_charge_backwards(flow):
    # The sandbox holds charge.succeeded until the refund's event exists, then sends the
    # refund first (twice): the late charge.succeeded must not undo the refund.
    flow.faults({"faults": [{"action": "webhook_reorder", "count": 2, "max_wait_ms": 10000},
                            {"action": "webhook_duplicate"}]})
    charge = flow.charge("order-8", source="tok_pending_100", amount=1500).json()
    provider_id = charge["provider_charge_id"]

    def settled_at_the_sandbox():
        return flow.stack.sandbox_api("GET", f"/v1/charges/{provider_id}").json()["status"] == "succeeded"

    wait_until(settled_at_the_sandbox, timeout=10, what="the sandbox to settle the charge")
    # A refund made at the provider itself (its dashboard): the service learns it by webhook.
    refund = flow.stack.sandbox_api("POST", "/v1/refunds", {"charge": provider_id})
    assert refund.status_code == 200, refund.text

    final = flow.wait_for_charge(charge["id"], "refunded")
    assert final["amount_refunded"] == 1500

    def all_processed():
        events = list(WebhookEvent.objects.values_list("type", "status"))
        return len(events) == 2 and all(status in {"processed", "ignored"} for _, status in events)

    wait_until(all_processed, timeout=15, what="both events to be processed")
    assert flow.get_charge(charge["id"])["status"] == "refunded"
    history = list(ChargeStatusChange.objects.filter(charge_id=charge["id"]).values_list("to_status", flat=True))
    assert history[-1] == "refunded" and "succeeded" not in history[history.index("refunded"):]
    def delivery_order():
        log = [entry["type"] for entry in flow.sandbox_stats()["webhooks"]["log"]]
        return log if {"charge.refunded", "charge.succeeded"} <= set(log) else None

    log = wait_until(delivery_order, timeout=10, what="the sandbox to record both deliveries")
    assert log.index("charge.refunded") < log.index("charge.succeeded")


def test_with_the_sandbox_down_charges_fail_fast_with_503_then_recover(flow):
    flow.stack.stop_sandbox()
    try:
        down = flow.charge("order-9")
        assert down.status_code == 503, down.text
        assert down.json()["error"]["type"] == "provider_unavailable"
    finally:
        flow.stack.start_sandbox()
    flow.stack.control("POST", "/_control/reset")

    # The circuit may be open for a moment after the outage; the same key is retried
    # until the provider is reachable again, as a client would.
    recovered = wait_until(lambda: (r := flow.charge("order-9")).status_code == 201 and r,
                           timeout=15, interval=0.3, what="the charge to go through after recovery")
    assert recovered.json()["status"] == "succeeded"
    assert flow.sandbox_stats()["charges"]["total"] == 1


def test_no_secret_reaches_any_process_log(flow):
    charge = flow.charge("order-10", source="tok_pending_100").json()
    flow.wait_for_charge(charge["id"], "succeeded")
    consumer_key = flow.api.headers["Authorization"].removeprefix("Bearer ")
    logs = "".join(p.log(tail=10_000_000) for p in flow.stack.procs.started)
    assert "/api/v1/charges" in logs and "webhook" in logs  # the logs are really there
    for secret in (flow.stack.sandbox_api_key, flow.stack.webhook_secret,
                   flow.stack.webhook_secret.removeprefix("whsec_"), consumer_key):
        assert secret not in logs
