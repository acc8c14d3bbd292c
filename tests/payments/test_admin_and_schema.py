"""Admin pages for charges and idempotency records, and the OpenAPI schema."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from idempotency.models import IdempotencyRecord
from payments.models import Charge

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def test_charge_admin_shows_refunds_outbound_key_and_history(staff_client, post_charge, api_client):
    charge = post_charge().json()
    api_client.post(f"/api/v1/charges/{charge['id']}/refunds", data={"amount": 100}, format="json",
                    HTTP_IDEMPOTENCY_KEY="r")
    stored = Charge.objects.get()
    page = staff_client.get(f"/admin/payments/charge/{stored.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert stored.outbound_idempotency_key in html
    assert stored.refunds.get().id in html
    assert "Status history" in html and "partially_refunded" in html
    assert "sk_test_provider_secret_123" not in html
    listing = staff_client.get("/admin/payments/charge/?status=partially_refunded")
    assert listing.status_code == 200 and stored.id in listing.content.decode()


def test_idempotency_records_are_read_only_and_filterable(staff_client, post_charge):
    post_charge(key="visible-key")
    record = IdempotencyRecord.objects.get()
    listing = staff_client.get("/admin/idempotency/idempotencyrecord/?response_status=201&method=POST")
    assert listing.status_code == 200 and "visible-key" in listing.content.decode()
    detail = staff_client.get(f"/admin/idempotency/idempotencyrecord/{record.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()  # no save button: read-only
    assert staff_client.get("/admin/idempotency/idempotencyrecord/add/").status_code == 403
    assert staff_client.post(f"/admin/idempotency/idempotencyrecord/{record.pk}/change/",
                             {"key": "changed"}).status_code == 403


def test_idempotency_records_cannot_be_deleted_in_the_admin(staff_client, post_charge, fake_provider):
    """Deleting a record would let the same key charge again."""
    body = post_charge(key="keep-me").json()
    record = IdempotencyRecord.objects.get()
    assert staff_client.post(f"/admin/idempotency/idempotencyrecord/{record.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    staff_client.post("/admin/idempotency/idempotencyrecord/",
                      {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"})
    assert IdempotencyRecord.objects.filter(pk=record.pk).exists()
    again = post_charge(key="keep-me")
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == body["id"]
    assert Charge.objects.count() == 1


def test_refunds_have_their_own_read_only_list(staff_client, post_charge, api_client):
    charge = post_charge().json()
    api_client.post(f"/api/v1/charges/{charge['id']}/refunds", data={"amount": 100}, format="json",
                    HTTP_IDEMPOTENCY_KEY="r-list")
    refund = Charge.objects.get().refunds.get()
    listing = staff_client.get("/admin/payments/refund/?status=succeeded")
    assert listing.status_code == 200 and refund.id in listing.content.decode()
    assert staff_client.get("/admin/payments/refund/add/").status_code == 403
    assert staff_client.post(f"/admin/payments/refund/{refund.pk}/delete/", {"post": "yes"}).status_code == 403


def test_schema_documents_idempotency_key_and_errors(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    create = schema["paths"]["/api/v1/charges"]["post"]
    header = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and header["required"] is True
    assert {"201", "400", "401", "402", "409", "422", "503"} <= set(create["responses"])
    refund = schema["paths"]["/api/v1/charges/{charge_id}/refunds"]["post"]
    assert {"201", "400", "404", "409", "422", "503"} <= set(refund["responses"])
    assert "idempotency_key_in_use" in response.content.decode()
    assert client.get("/api/docs/").status_code == 200


def test_api_docs_page_serves_swagger_ui_from_this_service(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
