"""Property: any interleaving of duplicates, outages and crashes leaves one charge per key
and consistent answers."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from api.models import api_key_create
from payments import services
from payments.models import Charge

from .conftest import CHARGE

pytestmark = pytest.mark.django_db

BODIES = [CHARGE, {**CHARGE, "source": "tok_chargeDeclined"}]
FINAL = {0: 201, 1: 402}  # the final answer for each body


class ProcessKilled(BaseException):
    pass


def crash_once():
    real = services.charge_store_outcome
    state = {"armed": True}

    def dying(**kwargs):
        if state["armed"]:
            state["armed"] = False
            raise ProcessKilled()
        return real(**kwargs)

    return mock.patch.object(services, "charge_store_outcome", dying)


operations = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 1), st.sampled_from(["ok", "ok", "down", "crash"])),
    min_size=1, max_size=12,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
@override_settings(IDEMPOTENCY_LOCK_TIMEOUT_SECONDS=0)  # a crashed request's lock is stale at once
def test_interleaved_duplicates_make_one_charge_per_key(pay_provider, fake_provider, ops):
    _, raw = api_key_create(consumer_name=f"prop-{uuid.uuid4().hex}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    prefix = uuid.uuid4().hex[:8]
    first_body: dict[int, int] = {}  # key -> body index of the first request that started work
    answers: dict[int, list] = {}

    def send(key: int, body: int, fault: str):
        fake_provider.mode = "down" if fault == "down" else "ok"
        post = lambda: client.post("/api/v1/charges", data=BODIES[body], format="json",  # noqa: E731
                                   HTTP_IDEMPOTENCY_KEY=f"{prefix}-{key}")
        if fault == "crash":
            with crash_once():
                try:
                    return post()
                except ProcessKilled:
                    return None
        return post()

    for key, body, fault in ops:
        response = send(key, body, fault)
        if key in first_body and body != first_body[key]:
            assert response is not None and response.status_code == 422
            continue
        first_body.setdefault(key, body)
        if response is None:
            continue  # the process "died" after the provider call
        if fault == "down" and not answers.get(key):
            # Unless an earlier attempt already finished it, an outage is a 503, not stored.
            assert response.status_code in {503, FINAL[body]}
        else:
            assert response.status_code == FINAL[body]
        if response.status_code != 503:
            answers.setdefault(key, []).append(response)

    fake_provider.mode = "ok"
    for key, body in first_body.items():  # finish whatever is still pending
        response = send(key, body, "ok")
        assert response.status_code == FINAL[body]
        answers.setdefault(key, []).append(response)

    charges = Charge.objects.filter(consumer__name__startswith="prop-", request_key__startswith=prefix)
    assert charges.count() == len(first_body)
    for key, responses in answers.items():
        bodies = {r.content for r in responses}
        assert len(bodies) == 1, "every answer for a key is the same stored answer"
        assert all(r.get("Idempotent-Replayed") == "true" for r in responses[1:])
        charge = charges.get(request_key=f"{prefix}-{key}")
        assert responses[0].json()["id"] == charge.id
        assert len(fake_provider.charges_for_key(charge.outbound_idempotency_key)) == 1
