"""Adapters against recorded responses in Stripe's documented shapes (and the sandbox's JSON)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
import responses

from integrations.adapters import ChargeRequest, RefundRequest
from integrations.credentials import credential_rotate
from integrations.errors import CredentialMissing, ProviderBadResponse, ProviderUnavailable
from integrations.kinds import adapter_for as adapter_of
from integrations.kinds import kinds_with
from integrations.kinds.sandbox import SandboxPayments
from integrations.kinds.stripe import StripePayments
from integrations.models import Provider

pytestmark = pytest.mark.django_db
BASE = "https://api.stripe.test"

# From Stripe's API reference (the charge object, legacy Charges API), trimmed of nothing we read.
STRIPE_CHARGE = {
    "id": "ch_3MmlLrLkdIwHu7ix0snN0B15", "object": "charge", "amount": 1099, "amount_captured": 1099,
    "amount_refunded": 0, "balance_transaction": "txn_3MmlLrLkdIwHu7ix0uke3Ezy", "captured": True,
    "created": 1679090539, "currency": "usd", "description": "Order 42", "failure_code": None,
    "failure_message": None, "livemode": False, "metadata": {"order": "42"}, "paid": True,
    "refunded": False, "status": "succeeded",
    "outcome": {"network_status": "approved_by_network", "risk_level": "normal", "seller_message":
                "Payment complete.", "type": "authorized"},
}
STRIPE_CARD_ERROR = {"error": {
    "charge": "ch_3MmlMhLkdIwHu7ix1Z2bqKkA", "code": "card_declined", "decline_code": "insufficient_funds",
    "doc_url": "https://stripe.com/docs/error-codes/card-declined",
    "message": "Your card has insufficient funds.", "type": "card_error",
}}
STRIPE_REFUND = {
    "id": "re_3MtwBwLkdIwHu7ix28a3tqPa", "object": "refund", "amount": 100,
    "balance_transaction": "txn_3MtwBwLkdIwHu7ix2Q1W5A4I", "charge": "ch_3MmlLrLkdIwHu7ix0snN0B15",
    "created": 1680651763, "currency": "usd", "metadata": {}, "payment_intent": None, "reason": None,
    "receipt_number": None, "status": "succeeded",
}
STRIPE_ALREADY_REFUNDED = {"error": {
    "code": "charge_already_refunded", "message": "Charge ch_3MmlLrLkdIwHu7ix0snN0B15 has already been refunded.",
    "type": "invalid_request_error",
}}


@pytest.fixture
def stripe_provider(db):
    provider = Provider.objects.create(slug="stripe", name="Stripe", kind="stripe", base_url=BASE,
                                       max_attempts=1, backoff_base=0.01, backoff_max=0.02)
    credential_rotate(provider=provider, purpose="api_key", value="sk_test_4eC39HqLyjWDarjtT1zdp7dc")
    return provider


def request_(key="pgw_ch_abc"):
    return ChargeRequest(amount=1099, currency="USD", source="tok_visa", idempotency_key=key,
                         description="Order 42", metadata={"order": "42", "customer": "c 7"})


def adapter_for(provider):
    return adapter_of(provider, "payments")


def test_kinds_map_to_their_payment_adapters(stripe_provider, provider):
    assert {"sandbox", "stripe"} <= kinds_with("payments")
    assert isinstance(adapter_for(stripe_provider), StripePayments)
    assert isinstance(adapter_for(provider), SandboxPayments)
    mailer = Provider(slug="mail", name="Mail", kind="sendgrid", base_url=BASE)
    with pytest.raises(LookupError, match="'mail' of kind 'sendgrid' has no 'payments' adapter"):
        adapter_for(mailer)


@responses.activate
def test_stripe_charge_is_form_encoded_with_key_and_bearer(stripe_provider):
    responses.post(f"{BASE}/v1/charges", json=STRIPE_CHARGE, status=200)
    result = adapter_for(stripe_provider).charge_create(request_())
    assert result.status == "succeeded" and result.provider_charge_id == STRIPE_CHARGE["id"]
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc"
    assert sent.headers["Idempotency-Key"] == "pgw_ch_abc"
    assert sent.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert dict(parse_qsl(sent.body.decode())) == {
        "amount": "1099", "currency": "usd", "source": "tok_visa", "description": "Order 42",
        "metadata[order]": "42", "metadata[customer]": "c 7",
    }


@responses.activate
def test_stripe_card_error_is_a_decline_not_an_error(stripe_provider):
    responses.post(f"{BASE}/v1/charges", json=STRIPE_CARD_ERROR, status=402)
    result = adapter_for(stripe_provider).charge_create(request_())
    assert result.declined
    assert result.failure_code == "insufficient_funds"
    assert result.failure_message == "Your card has insufficient funds."
    assert result.provider_charge_id == "ch_3MmlMhLkdIwHu7ix1Z2bqKkA"


@responses.activate
def test_stripe_invalid_request_is_a_definitive_failure(stripe_provider):
    body = {"error": {"code": "resource_missing", "message": "No such token: 'tok_nope'",
                      "param": "source", "type": "invalid_request_error"}}
    responses.post(f"{BASE}/v1/charges", json=body, status=400)
    result = adapter_for(stripe_provider).charge_create(request_())
    assert result.status == "failed" and result.failure_code == "resource_missing"


@pytest.mark.parametrize("status", [500, 503, 401, 409, 429])
@responses.activate
def test_stripe_server_errors_and_retry_later_answers_are_unavailable(stripe_provider, status):
    responses.post(f"{BASE}/v1/charges", json={"error": {"type": "api_error", "message": "x"}}, status=status)
    with pytest.raises(ProviderUnavailable) as caught:
        adapter_for(stripe_provider).charge_create(request_())
    assert caught.value.result.provider == "stripe"
    assert caught.value.result.status == status
    assert caught.value.result.error_code == f"HTTP_{status}"  # the client's own code, not a new one
    assert "sk_test_4eC39HqLyjWDarjtT1zdp7dc" not in str(caught.value)


@responses.activate
def test_stripe_connection_error_is_unavailable(stripe_provider):
    # `responses` refuses unregistered URLs with a ConnectionError, like a closed port.
    with pytest.raises(ProviderUnavailable) as caught:
        adapter_for(stripe_provider).charge_create(request_())
    assert caught.value.result.error_code == "ECONN"


@responses.activate
def test_stripe_unreadable_answer_is_the_clients_bad_response(stripe_provider):
    responses.post(f"{BASE}/v1/charges", body="<html>ok</html>", status=200)
    with pytest.raises(ProviderBadResponse) as caught:
        adapter_for(stripe_provider).charge_create(request_())
    assert caught.value.result.error_code == "EBADRESPONSE"


@pytest.mark.parametrize("status", [401, 404, 409])
@responses.activate
def test_stripe_retry_later_refund_answers_are_unavailable_not_refusals(stripe_provider, status):
    responses.post(f"{BASE}/v1/refunds", json={"error": {"type": "invalid_request_error"}}, status=status)
    with pytest.raises(ProviderUnavailable) as caught:
        adapter_for(stripe_provider).refund_create(
            RefundRequest(provider_charge_id=STRIPE_CHARGE["id"], amount=100, idempotency_key="pgw_re_1"))
    assert caught.value.result.error_code == f"HTTP_{status}"


@responses.activate
def test_stripe_without_an_api_key_raises_the_clients_credential_missing(stripe_provider):
    stripe_provider.credentials.all().delete()
    with pytest.raises(CredentialMissing, match="api_key"):
        adapter_for(stripe_provider).charge_create(request_())
    assert len(responses.calls) == 0


@responses.activate
def test_stripe_retrieve(stripe_provider):
    refunded = {**STRIPE_CHARGE, "amount_refunded": 100}
    responses.get(f"{BASE}/v1/charges/{STRIPE_CHARGE['id']}", json=refunded)
    result = adapter_for(stripe_provider).charge_retrieve(STRIPE_CHARGE["id"])
    assert result.status == "succeeded" and result.amount_refunded == 100


@responses.activate
def test_stripe_refund(stripe_provider):
    responses.post(f"{BASE}/v1/refunds", json=STRIPE_REFUND)
    result = adapter_for(stripe_provider).refund_create(
        RefundRequest(provider_charge_id=STRIPE_CHARGE["id"], amount=100, idempotency_key="pgw_re_1"))
    assert result.status == "succeeded" and result.provider_refund_id == STRIPE_REFUND["id"]
    sent = responses.calls[0].request
    assert dict(parse_qsl(sent.body.decode())) == {"charge": STRIPE_CHARGE["id"], "amount": "100"}
    assert sent.headers["Idempotency-Key"] == "pgw_re_1"


@responses.activate
def test_stripe_refund_refused(stripe_provider):
    responses.post(f"{BASE}/v1/refunds", json=STRIPE_ALREADY_REFUNDED, status=400)
    result = adapter_for(stripe_provider).refund_create(
        RefundRequest(provider_charge_id=STRIPE_CHARGE["id"], amount=100, idempotency_key="pgw_re_1"))
    assert result.status == "failed" and result.failure_code == "charge_already_refunded"


@responses.activate
def test_sandbox_sends_json(provider):
    provider.max_attempts = 1
    provider.save()
    responses.post(f"{provider.base_url}/v1/charges", json={**STRIPE_CHARGE, "id": "ch_sbx"})
    result = adapter_for(provider).charge_create(request_())
    assert result.provider_charge_id == "ch_sbx"
    sent = responses.calls[0].request
    assert json.loads(sent.body) == {"amount": 1099, "currency": "usd", "source": "tok_visa",
                                     "description": "Order 42", "metadata": {"order": "42", "customer": "c 7"}}
