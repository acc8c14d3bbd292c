"""Provider kinds: each module's declarations, lookups by capability, and a kind added without a migration."""

from __future__ import annotations

import hashlib
import hmac
import io
import time

import pytest
import responses
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.urls import reverse

from integrations import auth
from integrations import kinds as kinds_module
from integrations.adapters.stripe_style import StripeStyleAdapter
from integrations.credentials import credential_rotate
from integrations.kinds import (
    KIND_MODULES,
    Kind,
    adapter_for,
    all_kinds,
    get_kind,
    kind_choices,
    kinds_with,
    registered_kind,
)
from integrations.models import AuthScheme, Provider
from webhooks.schemes.github import GitHubScheme
from webhooks.schemes.mailgun import MailgunScheme
from webhooks.schemes.razorpay import RazorpayScheme
from webhooks.schemes.sendgrid import SendGridScheme
from webhooks.schemes.standard import StandardScheme
from webhooks.schemes.stripe import StripeScheme

# What integrations/auth.py's per-kind tables and webhooks/schemes' SCHEMES said before kinds
# were modules: kind -> (auth scheme, API-version header, HMAC headers, webhook scheme class).
BEFORE_KIND_MODULES = {
    "sandbox": ("bearer", "Stripe-Version", ("X-Signature", "X-Timestamp"), StandardScheme),
    "stripe": ("bearer", "Stripe-Version", ("X-Signature", "X-Timestamp"), StripeScheme),
    "razorpay": ("basic", "X-API-Version", ("X-Signature", "X-Timestamp"), RazorpayScheme),
    "sendgrid": ("bearer", "X-API-Version", ("X-Signature", "X-Timestamp"), SendGridScheme),
    "standard": ("bearer", "X-API-Version", ("X-Signature", "X-Timestamp"), StandardScheme),
    "github": ("bearer", "X-API-Version", ("X-Hub-Signature-256", "X-Hub-Timestamp"), GitHubScheme),
    "mailgun": ("basic", "X-API-Version", ("X-Signature", "X-Timestamp"), MailgunScheme),
    "nominatim": ("none", "X-API-Version", ("X-Signature", "X-Timestamp"), type(None)),
}
BASE = "https://api.acme.test"


# --- a throwaway kind, written as a kind module would be ---------------------------------
class AcmePayments(StripeStyleAdapter):
    def encode(self, payload: dict) -> dict:
        return {"json": payload}


ACME = Kind(
    name="acme",
    label="Acme Pay",
    auth_scheme=AuthScheme.API_KEY_HEADER,
    api_version_header="Acme-Version",
    webhook_scheme=GitHubScheme(),
    adapters={"payments": AcmePayments},
)


# --- the listed kinds -------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BEFORE_KIND_MODULES))
def test_each_kind_declares_the_defaults_the_tables_had(name):
    scheme, version_header, hmac_headers, webhook_scheme = BEFORE_KIND_MODULES[name]
    provider = Provider(slug="p", name="P", kind=name, base_url=BASE)

    assert auth.scheme_for(provider) == scheme
    assert auth.api_version_header(provider) == version_header
    assert auth.hmac_headers(provider) == hmac_headers
    assert type(get_kind(name).webhook_scheme) is webhook_scheme


def test_every_listed_module_is_a_kind_and_a_choice():
    assert [kind.name for kind in all_kinds()] == [path.rsplit(".", 1)[1] for path in KIND_MODULES]
    assert set(BEFORE_KIND_MODULES) == {kind.name for kind in all_kinds()}
    assert kind_choices() == [(kind.name, kind.label) for kind in all_kinds()]
    assert Provider._meta.get_field("kind").check() == []  # names fit max_length


def test_the_provider_own_settings_win_over_the_kind_and_unknown_kinds_get_generic_defaults():
    own = Provider(kind="stripe", auth_scheme="basic", api_version_header="X-V")
    unknown = Provider(kind="gone")

    assert (auth.scheme_for(own), auth.api_version_header(own)) == ("basic", "X-V")
    assert (auth.scheme_for(unknown), auth.api_version_header(unknown)) == ("bearer", "X-API-Version")
    assert auth.hmac_headers(unknown) == ("X-Signature", "X-Timestamp")


def test_capabilities_come_from_adapters_plus_declared_ones():
    assert kinds_with("payments") == {"sandbox", "stripe"}
    assert get_kind("razorpay").capabilities == frozenset()
    assert kinds_with("email") == {"sandbox", "sendgrid", "mailgun"}
    kind = Kind(name="x", label="X", adapters={"payments": AcmePayments}, capabilities=frozenset({"email"}))
    assert kind.capabilities == {"payments", "email"}


def test_a_missing_adapter_or_kind_is_a_clear_lookup_error():
    mailer = Provider(slug="mail", name="Mail", kind="sendgrid", base_url=BASE)
    with pytest.raises(LookupError, match=r"'mail' of kind 'sendgrid' has no 'payments' adapter \(it offers: email\)"):
        adapter_for(mailer, "payments")
    with pytest.raises(LookupError, match="unknown provider kind 'gone'"):
        adapter_for(Provider(slug="old", kind="gone"), "payments")


def test_an_unknown_kind_does_not_validate(db):
    provider = Provider(slug="p", name="P", kind="gone", base_url=BASE)
    with pytest.raises(ValidationError) as err:
        provider.full_clean()
    assert "kind" in err.value.message_dict


def test_two_modules_naming_the_same_kind_are_refused(monkeypatch):
    monkeypatch.setattr(kinds_module, "KIND_MODULES", (*KIND_MODULES, "integrations.kinds.stripe"))
    monkeypatch.setattr(kinds_module, "_kinds", None)
    with pytest.raises(ImproperlyConfigured, match="two provider kinds are called 'stripe'"):
        get_kind("stripe")


def test_registering_an_existing_name_is_refused():
    with pytest.raises(ValueError, match="already exists"), registered_kind(Kind(name="stripe", label="Again")):
        pass
    assert get_kind("stripe").label == "Stripe"


# --- a kind added without a migration -----------------------------------------------------
@responses.activate
def test_a_kind_registered_without_a_migration_works_end_to_end(db):
    with registered_kind(ACME):
        provider = Provider(slug="acme", name="Acme", kind="acme", base_url=BASE,
                            max_attempts=1, backoff_base=0.01, backoff_max=0.02)
        provider.full_clean()  # the choice validates
        provider.save()
        provider.refresh_from_db()
        assert provider.get_kind_display() == "Acme Pay"
        assert "acme" in kinds_with("payments")

        # Its payment adapter, authenticated the way the kind says by default.
        credential_rotate(provider=provider, purpose="api_key", value="acme_key_123")
        responses.post(f"{BASE}/v1/charges", json={"id": "ch_1", "status": "succeeded"})
        adapter = adapter_for(provider, "payments")
        assert isinstance(adapter, AcmePayments)
        from integrations.adapters import ChargeRequest
        result = adapter.charge_create(ChargeRequest(amount=100, currency="EUR", source="tok",
                                                     idempotency_key="k1"))
        assert (result.status, result.provider_charge_id) == ("succeeded", "ch_1")
        assert responses.calls[0].request.headers["X-API-Key"] == "acme_key_123"

        # Its webhooks, verified by its scheme.
        body, secret = b'{"action": "paid"}', "acme-webhook-secret"
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        get_kind("acme").webhook_scheme.verify(headers={"x-hub-signature-256": signature}, body=body,
                                               secrets=[secret], tolerance=300, now=time.time())

        # And nothing for makemigrations to write (it exits non-zero when it would).
        out = io.StringIO()
        call_command("makemigrations", "integrations", "--check", "--dry-run", stdout=out)
        assert "No changes detected" in out.getvalue()

    with pytest.raises(ValidationError):
        provider.full_clean()  # the kind is gone with its registration
    assert "acme" not in kinds_with("payments")


def test_a_registered_kind_receives_webhooks_at_its_url(client, db):
    with registered_kind(ACME):
        provider = Provider.objects.create(slug="acme", name="Acme", kind="acme", base_url=BASE)
        credential_rotate(provider=provider, purpose="webhook_secret", value="acme-webhook-secret")
        body = b'{"action": "paid"}'
        signature = "sha256=" + hmac.new(b"acme-webhook-secret", body, hashlib.sha256).hexdigest()
        answer = client.post("/webhooks/acme/", data=body, content_type="application/json",
                             HTTP_X_HUB_SIGNATURE_256=signature, HTTP_X_GITHUB_DELIVERY="d-1",
                             HTTP_X_GITHUB_EVENT="ping")

    assert answer.status_code == 200, answer.content
    assert answer.json() == {"received": True, "duplicate": False}


def test_configure_provider_accepts_a_registered_kind(db):
    out = io.StringIO()
    with registered_kind(ACME):
        call_command("configure_provider", "acme", "--kind", "acme", "--base-url", BASE, stdout=out)
    assert Provider.objects.get(slug="acme").kind == "acme"


def test_admin_filters_providers_by_kind_including_a_registered_one(client, db):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only"))
    Provider.objects.create(slug="card", name="Card", kind="stripe", base_url=BASE)
    Provider.objects.create(slug="mail", name="Mail", kind="sendgrid", base_url=BASE)
    url = reverse("admin:integrations_provider_changelist")

    with registered_kind(ACME):
        Provider.objects.create(slug="acme", name="Acme", kind="acme", base_url=BASE)
        listing = client.get(url).content.decode()
        filtered = client.get(url, {"kind__exact": "stripe"}).content.decode()

    assert '<a href="?kind__exact=acme">Acme Pay</a>' in listing
    assert "Card (card)" in filtered
    assert "Mail (mail)" not in filtered and "Acme (acme)" not in filtered


def test_a_new_nominatim_provider_starts_with_its_kinds_usage_policy(db):
    call_command("configure_provider", "osm", "--kind", "nominatim", "--base-url", "https://nominatim.example")
    osm = Provider.objects.get(slug="osm")
    assert (osm.rate_limit_requests, osm.rate_limit_period, osm.cache_ttl) == (1, 1.0, 7 * 24 * 3600)


def test_kind_defaults_never_override_a_chosen_value_or_an_existing_provider(db):
    chosen = Provider(slug="mine", name="Mine", kind="nominatim", base_url=BASE, cache_ttl=60)
    assert get_kind("nominatim").apply_provider_defaults(chosen) == ["rate_limit_requests", "rate_limit_period"]
    assert chosen.cache_ttl == 60

    call_command("configure_provider", "osm", "--kind", "nominatim", "--base-url", "https://nominatim.example")
    Provider.objects.filter(slug="osm").update(rate_limit_requests=5)
    call_command("configure_provider", "osm", "--kind", "nominatim", "--base-url", "https://nominatim.example")
    assert Provider.objects.get(slug="osm").rate_limit_requests == 5  # an update keeps what staff set


def test_the_admin_add_form_applies_the_kinds_defaults_and_says_so(admin_client):
    from django.contrib import admin as django_admin

    model_admin = django_admin.site._registry[Provider]
    form_class = model_admin.get_form(None)
    data = {f.name: f.value_from_object(Provider()) for f in Provider._meta.fields if f.name in form_class.base_fields}
    data.update(slug="osm", name="OSM", kind="nominatim", base_url="https://nominatim.example")
    data = {k: ("" if v is None else v) for k, v in data.items()}
    answer = admin_client.post("/admin/integrations/provider/add/", {
        **data, **{f"{prefix}-{key}": value for prefix in ("credentials", "credentials-2")
                   for key, value in (("TOTAL_FORMS", 0), ("INITIAL_FORMS", 0))}}, follow=True)
    assert answer.status_code == 200
    osm = Provider.objects.get(slug="osm")
    assert (osm.rate_limit_requests, osm.cache_ttl) == (1, 7 * 24 * 3600)
    assert "Applied the nominatim kind&#x27;s defaults" in answer.content.decode()
