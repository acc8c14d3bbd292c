"""The charges API: validation, the charge JSON, ownership, listing and provider choice."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from api.models import api_key_create
from integrations.models import Provider
from payments.models import Charge

from .conftest import CHARGE

pytestmark = pytest.mark.django_db

CHARGE_FIELDS = {"id", "amount", "currency", "status", "amount_refunded", "provider", "provider_charge_id",
                 "failure_code", "failure_message", "description", "metadata", "created"}


def test_created_charge_has_exactly_the_contract_fields(post_charge, pay_provider, fake_provider):
    response = post_charge()
    assert response.status_code == 201
    body = response.json()
    assert set(body) == CHARGE_FIELDS
    assert body["id"].startswith("ch_")
    assert body["amount"] == 1500 and body["currency"] == "usd" and body["status"] == "succeeded"
    assert body["provider"] == pay_provider.slug and body["provider_charge_id"].startswith("ch_fake_")
    assert body["metadata"] == {"order": "42"} and body["description"] == "Order 42"
    # What reached the provider: JSON, the bearer credential, the charge's outbound key.
    sent = fake_provider.requests[0]
    assert sent["body"]["amount"] == 1500 and sent["body"]["metadata"] == {"order": "42"}
    assert sent["authorization"] == "Bearer sk_test_provider_secret_123"
    assert sent["key"] == Charge.objects.get().outbound_idempotency_key


def test_api_answers_do_not_contain_the_provider_secret(post_charge, api_client):
    created = post_charge()
    listed = api_client.get("/api/v1/charges")
    for response in (created, listed):
        assert b"sk_test_provider_secret_123" not in response.content


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": 100_000_000}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "us"}, "currency"),
        ({"source": ""}, "source"),
        ({"metadata": {"nested": {"a": "b"}}}, "metadata"),
        ({"metadata": {"n": 1}}, "metadata"),
        ({"metadata": ["a"]}, "metadata"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata"),
        ({"metadata": {"k": "v" * 501}}, "metadata"),
        ({"metadata": {"k" * 41: "v"}}, "metadata"),
        ({"description": "d" * 1001}, "description"),
        ({"provider": "nope"}, "provider"),
    ],
)
def test_invalid_fields_are_400_naming_the_field(post_charge, fake_provider, change, field):
    response = post_charge({**CHARGE, **change})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert error["param"] == field and field in error["message"]
    assert not Charge.objects.exists() and not fake_provider.requests


def test_missing_required_fields_are_named(post_charge):
    for field in ("amount", "currency", "source"):
        body = {k: v for k, v in CHARGE.items() if k != field}
        assert post_charge(body).json()["error"]["param"] == field


def test_malformed_json_is_400_not_500(post_charge):
    response = post_charge("{not json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_json"


def test_currency_is_case_insensitive_and_stored_lower_case(post_charge):
    assert post_charge({**CHARGE, "currency": "EUR"}).json()["currency"] == "eur"


@override_settings(PAYMENTS_MAX_AMOUNT=1000)
def test_maximum_amount_is_a_setting(post_charge):
    assert post_charge({**CHARGE, "amount": 1000}).status_code == 201
    assert post_charge({**CHARGE, "amount": 1001}).json()["error"]["param"] == "amount"


def test_disabled_provider_is_400(post_charge, pay_provider):
    pay_provider.enabled = False
    pay_provider.save()
    response = post_charge({**CHARGE, "provider": pay_provider.slug})
    assert response.status_code == 400 and response.json()["error"]["param"] == "provider"


def test_provider_of_a_non_payment_kind_is_400(post_charge, pay_provider):
    Provider.objects.create(slug="mailer", name="Mailer", kind="sendgrid", base_url="http://127.0.0.1:9")
    assert post_charge({**CHARGE, "provider": "mailer"}).json()["error"]["param"] == "provider"


def test_omitted_provider_is_the_only_enabled_payment_provider(post_charge, pay_provider):
    Provider.objects.create(slug="mailer", name="Mailer", kind="sendgrid", base_url="http://127.0.0.1:9")
    Provider.objects.create(slug="old-stripe", name="Old", kind="stripe", base_url="http://127.0.0.1:9",
                            enabled=False)
    body = {k: v for k, v in CHARGE.items() if k != "provider"}
    assert post_charge(body).json()["provider"] == pay_provider.slug


def test_omitted_provider_with_two_candidates_needs_the_setting(post_charge, pay_provider):
    Provider.objects.create(slug="stripe", name="Stripe", kind="stripe", base_url="http://127.0.0.1:9")
    response = post_charge(CHARGE)
    assert response.status_code == 400 and response.json()["error"]["param"] == "provider"
    with override_settings(PAYMENTS_DEFAULT_PROVIDER=pay_provider.slug):
        assert post_charge(CHARGE).json()["provider"] == pay_provider.slug


def test_unauthenticated_requests_are_401_in_the_error_shape(pay_provider):
    response = APIClient().post("/api/v1/charges", data=CHARGE, format="json", HTTP_IDEMPOTENCY_KEY="x")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_required"


def test_a_consumer_sees_only_its_own_charges(post_charge, api_client):
    charge = post_charge().json()
    assert api_client.get(f"/api/v1/charges/{charge['id']}").json() == charge
    _, other_key = api_key_create(consumer_name="other-shop")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    response = other.get(f"/api/v1/charges/{charge['id']}")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
    assert other.get("/api/v1/charges").json()["results"] == []
    refund = other.post(f"/api/v1/charges/{charge['id']}/refunds", data={}, format="json",
                        HTTP_IDEMPOTENCY_KEY="steal")
    assert refund.status_code == 404


def test_list_is_newest_first_with_cursor_pages(post_charge, api_client):
    ids = [post_charge({**CHARGE, "amount": 100 + i}).json()["id"] for i in range(5)]
    page = api_client.get("/api/v1/charges?limit=2").json()
    seen = [c["id"] for c in page["results"]]
    while page["next"]:
        page = api_client.get(page["next"]).json()
        seen += [c["id"] for c in page["results"]]
    assert seen == list(reversed(ids))


@pytest.mark.parametrize("limit", ["0", "101", "x", "-1"])
def test_list_limit_is_bounded(api_client, limit):
    response = api_client.get(f"/api/v1/charges?limit={limit}")
    assert response.status_code == 400 and response.json()["error"]["param"] == "limit"


def test_list_with_a_bad_cursor_is_400(api_client):
    response = api_client.get("/api/v1/charges?cursor=garbage")
    assert response.status_code == 400 and response.json()["error"]["param"] == "cursor"


def test_unknown_charge_is_404(api_client):
    assert api_client.get("/api/v1/charges/ch_nope").status_code == 404
