"""Fault injection: scripted 5xx, 429, delays, dropped responses and rate limits."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox.faults import FaultPlan, RateLimit


def test_the_next_two_requests_fail_with_503_then_the_charge_is_made_once(client):
    client.faults({"faults": [{"action": "error", "status": 503, "count": 2}]})
    statuses = [client.charge(key="flaky").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    stats = client.stats()
    assert stats["charges"]["by_idempotency_key"] == {"flaky": 1}
    assert stats["faults_applied"] == {"error": 2}
    assert stats["requests"]["POST /v1/charges"] == {"503": 2, "200": 1}


def test_a_429_fault_carries_retry_after_and_processes_nothing(client):
    client.faults({"faults": [{"action": "rate_limited", "retry_after": 3}]})
    response = client.charge(key="limited")
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert client.stats()["charges"]["total"] == 0
    assert client.charge(key="limited").status_code == 200


def test_retry_after_can_be_an_http_date(client):
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    client.faults({"faults": [{"action": "rate_limited", "retry_after": date}]})
    assert client.get("/v1/records").headers["Retry-After"] == date


def test_a_delay_fault_holds_the_answer(client):
    client.faults({"faults": [{"action": "delay", "ms": 400}]})
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        client.session.get(client.base_url + "/v1/records?limit=1", timeout=0.15)
    assert client.get("/v1/records?limit=1").status_code == 200
    assert time.monotonic() - started >= 0.15


def test_a_dropped_response_still_makes_the_charge_and_a_retry_replays_it(client, receiver):
    client.faults({"faults": [{"action": "drop", "method": "POST", "path": "/v1/charges"}]})
    with pytest.raises(requests.ConnectionError):
        client.charge(key="lost-response")
    stats = client.stats()
    assert stats["charges"]["by_idempotency_key"] == {"lost-response": 1}
    retry = client.charge(key="lost-response")
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert client.stats()["charges"]["total"] == 1
    receiver.wait_for(1)
    assert [d.event["type"] for d in receiver.deliveries] == ["charge.succeeded"]


def test_faults_match_method_and_path_and_skip_other_requests(client):
    client.faults({"faults": [{"action": "error", "status": 500, "method": "POST", "path": "/v1/refunds"}]})
    charge = client.charge()
    assert charge.status_code == 200
    assert client.get(f"/v1/charges/{charge.json()['id']}").status_code == 200
    assert client.post("/v1/refunds", {"charge": charge.json()["id"]}).status_code == 500
    assert client.post("/v1/refunds", {"charge": charge.json()["id"]}).status_code == 200


def test_faults_are_taken_in_order_and_control_endpoints_never_consume_them(client):
    plan = client.faults({"faults": [{"action": "error", "status": 502},
                                     {"action": "rate_limited", "retry_after": 1}]})
    assert [f["action"] for f in plan["faults"]] == ["error", "rate_limited"]
    client.stats()
    assert [client.get("/v1/records").status_code for _ in range(3)] == [502, 429, 200]
    assert client.get("/_control/faults").json() == {"faults": [], "rate_limit": None}


def test_posting_faults_replaces_the_plan_unless_appending(client):
    client.faults({"faults": [{"action": "error", "count": 5}]})
    client.faults({"faults": [{"action": "error", "status": 504}]})
    appended = client.session.post(client.base_url + "/_control/faults?append=1", timeout=5,
                                   json={"faults": [{"action": "error", "status": 500}]}).json()
    assert [(f["status"], f["count"]) for f in appended["faults"]] == [(504, 1), (500, 1)]
    assert client.session.delete(client.base_url + "/_control/faults", timeout=5).json()["faults"] == []


@pytest.mark.parametrize("body", [
    {"faults": [{"action": "explode"}]},
    {"faults": [{"action": "error", "count": 0}]},
    {"faults": [{"action": "error", "status": 200}]},
    {"faults": [{"action": "delay", "ms": "soon"}]},
    {"faults": [{"action": "error", "colour": "red"}]},
    {"faults": {"action": "error"}},
    {"rate_limit": {"requests": 0, "period": 1}},
    {"rate_limit": {"requests": 1}},
    {"surprise": 1},
    [],
])
def test_invalid_fault_plans_are_400s_and_leave_the_plan_unchanged(client, body):
    client.faults({"faults": [{"action": "error", "status": 503}]})
    response = client.session.post(client.base_url + "/_control/faults", json=body, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert [f["status"] for f in client.get("/_control/faults").json()["faults"]] == [503]


def test_a_rate_limit_answers_429_beyond_n_requests_per_period(client):
    client.faults({"rate_limit": {"requests": 2, "period": 60}})
    statuses = [client.get("/v1/records?limit=1") for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert 1 <= int(statuses[2].headers["Retry-After"]) <= 60
    client.faults({"rate_limit": None})
    assert client.get("/v1/records?limit=1").status_code == 200


def test_the_rate_limit_window_slides():
    now = [100.0]
    plan = FaultPlan(clock=lambda: now[0])
    plan.configure({"rate_limit": {"requests": 2, "period": 10}}, replace=True)
    assert plan.rate_limited() is None
    now[0] = 105
    assert plan.rate_limited() is None
    assert plan.rate_limited() == 5  # the first hit leaves the window at 110
    now[0] = 110.5
    assert plan.rate_limited() is None
    assert RateLimit(requests=1, period=0.5).hit(0) is None


@pytest.mark.parametrize("header, status", [
    ("status=502", 502),
    ("status=429, retry_after=7", 429),
    ("nonsense", 400),
    ("status=200", 400),
])
def test_a_request_can_ask_for_its_own_fault_with_a_header(client, header, status):
    response = client.charge(headers={"X-Sandbox-Fault": header})
    assert response.status_code == status
    if status == 429:
        assert response.headers["Retry-After"] == "7"
    assert client.stats()["charges"]["total"] == 0


def test_a_drop_header_processes_and_closes_without_answering(client):
    with pytest.raises(requests.ConnectionError):
        client.charge(key="hdr-drop", headers={"X-Sandbox-Fault": "drop"})
    assert client.stats()["charges"]["by_idempotency_key"] == {"hdr-drop": 1}


def test_a_delay_after_processing_commits_before_the_client_gives_up(client):
    with pytest.raises(requests.Timeout):
        client.session.post(client.base_url + "/v1/charges", timeout=0.2,
                            json={"amount": 5, "currency": "usd", "source": "tok_visa"},
                            headers={"Idempotency-Key": "slow-answer",
                                     "X-Sandbox-Fault": "delay_ms=600, phase=after"})
    assert client.stats()["charges"]["by_idempotency_key"] == {"slow-answer": 1}
