"""Charge ids in URLs: anything that cannot be a charge id is a 404 before any query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import new_charge_id
from payments.urls import ChargeIdConverter

pytestmark = pytest.mark.django_db

NOT_CHARGE_IDS = ["%00", "ch_%00", "ch_0123456789abcdef0123456%00", "x" * 300, "ch_" + "0" * 25, "ch_ABC",
                  "%C5%BF", "re_0123456789abcdef01234567"]


def test_every_new_charge_id_matches_the_url_pattern():
    assert all(ChargeIdConverter.pattern.fullmatch(new_charge_id()) for _ in range(100))


@pytest.mark.parametrize("charge_id", NOT_CHARGE_IDS)
def test_get_with_an_impossible_id_is_a_json_404_without_a_query(api_client, charge_id):
    api_client.get("/api/v1/whoami")  # authenticate once, so only this request's queries count
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(f"/api/v1/charges/{charge_id}")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert not [q for q in queries.captured_queries if "payments_charge" in q["sql"]]


@pytest.mark.parametrize("charge_id", NOT_CHARGE_IDS)
def test_refund_with_an_impossible_id_is_a_json_404_and_stores_no_key(api_client, charge_id):
    from idempotency.models import IdempotencyRecord

    response = api_client.post(f"/api/v1/charges/{charge_id}/refunds", data={}, format="json",
                               HTTP_IDEMPOTENCY_KEY="k-impossible-id")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert not IdempotencyRecord.objects.exists()


def test_a_well_formed_unknown_id_is_still_a_404(api_client):
    response = api_client.get(f"/api/v1/charges/{new_charge_id()}")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
