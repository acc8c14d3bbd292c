"""The admin never shows a credential's plaintext, and values set there are stored encrypted."""

import logging

import pytest
from django.contrib.auth import get_user_model

from integrations.credentials import credential_rotate, credential_value
from integrations.models import Credential

SECRET = "sk_live_admin_must_never_show_9f8e7d"


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser("staff", "staff@example.test", "pw-for-tests-123")
    client.force_login(user)
    return client


def change_form_post(client, provider, *, value: str, grace: str = "0") -> dict:
    """The provider change form as the admin renders it, plus one new credential value."""
    url = f"/admin/integrations/provider/{provider.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {k: ("" if v is None else v) for k, v in form.initial.items() if k != "id"}
    data.update({
        # Existing credentials inline (read-only rows) and the "new value" inline.
        "credentials-TOTAL_FORMS": "2", "credentials-INITIAL_FORMS": "2",
        "credentials-MIN_NUM_FORMS": "0", "credentials-MAX_NUM_FORMS": "1000",
        "credentials-2-TOTAL_FORMS": "1", "credentials-2-INITIAL_FORMS": "0",
        "credentials-2-MIN_NUM_FORMS": "0", "credentials-2-MAX_NUM_FORMS": "1000",
        "credentials-2-0-environment": "sandbox", "credentials-2-0-purpose": "api_key",
        "credentials-2-0-value": value, "credentials-2-0-grace_minutes": grace,
    })
    for i, credential in enumerate(Credential.objects.filter(provider=provider).order_by(
            "provider", "environment", "purpose", "-version")):
        data[f"credentials-{i}-id"] = str(credential.pk)
        data[f"credentials-{i}-provider"] = str(provider.pk)
    return data


def test_provider_change_page_never_contains_plaintext(staff_client, provider):
    credential = credential_rotate(provider=provider, purpose="api_key", value=SECRET)
    page = staff_client.get(f"/admin/integrations/provider/{provider.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert SECRET not in html
    assert "sk_test_provider_secret_123" not in html
    assert credential.fingerprint in html
    for pk in Credential.objects.values_list("pk", flat=True):
        detail = staff_client.get(f"/admin/integrations/credential/{pk}/change/").content.decode()
        assert SECRET not in detail


def test_credential_list_never_contains_plaintext(staff_client, provider):
    credential_rotate(provider=provider, purpose="api_key", value=SECRET)
    page = staff_client.get("/admin/integrations/credential/")
    assert page.status_code == 200
    assert SECRET not in page.content.decode()


def test_setting_a_value_in_the_admin_rotates_and_encrypts(staff_client, provider, caplog):
    caplog.set_level(logging.DEBUG)
    url = f"/admin/integrations/provider/{provider.pk}/change/"
    data = change_form_post(staff_client, provider, value=SECRET)
    response = staff_client.post(url, data, follow=True)
    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert credential_value(provider=provider, purpose="api_key") == SECRET
    assert Credential.objects.filter(provider=provider, purpose="api_key").count() == 2
    assert SECRET not in caplog.text


def test_admin_refuses_an_absurd_grace_without_a_500_or_echoing_the_value(staff_client, provider):
    url = f"/admin/integrations/provider/{provider.pk}/change/"
    data = change_form_post(staff_client, provider, value=SECRET, grace="99999999999999")
    response = staff_client.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert SECRET not in response.content.decode()
    assert Credential.objects.filter(provider=provider, purpose="api_key").count() == 1


def test_debug_error_page_of_the_provider_form_hides_the_post_data(provider, monkeypatch, settings):
    """A crash while saving a credential, with DEBUG on: the technical 500 page that Django
    renders must not list the submitted value (sensitive_post_parameters + our filter)."""
    from django.test import Client

    def crash(self, *args, **kwargs):
        raise RuntimeError("simulated failure while storing")

    # Fails deep inside the real credential_rotate, whose frame holds the value.
    monkeypatch.setattr(Credential, "save", crash)
    settings.DEBUG = True
    user = get_user_model().objects.create_superuser("dbg", "dbg@example.test", "pw-for-tests-123")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    url = f"/admin/integrations/provider/{provider.pk}/change/"
    data = change_form_post(client, provider, value=SECRET)
    response = client.post(url, data)
    assert response.status_code == 500
    page = response.content.decode()
    assert "simulated failure while storing" in page  # it is the technical page
    assert SECRET not in page
