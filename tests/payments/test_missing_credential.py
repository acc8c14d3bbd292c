"""A provider without a current API key is our configuration problem: 503, never a 500."""

from django.test import override_settings

from integrations.credentials import credential_rotate
from integrations.models import Credential
from payments.models import Charge
from payments.tasks import complete_stale


def _expire_api_key(provider):
    # What staff do to end a grace period, applied to the current key by mistake.
    Credential.objects.filter(provider=provider, purpose="api_key").update(active_until="2000-01-01T00:00Z")


def test_charge_without_a_current_api_key_is_503_and_resumes_once_it_is_added(post_charge, pay_provider,
                                                                             fake_provider):
    _expire_api_key(pay_provider)

    first = post_charge(key="needs-a-key")

    assert first.status_code == 503
    assert first.json()["error"]["type"] == "provider_unavailable"
    assert first["Retry-After"] == "5"
    assert Charge.objects.get().status == "pending"
    assert sum(fake_provider.calls_by_key.values()) == 0

    credential_rotate(provider=pay_provider, purpose="api_key", value="sk_test_provider_secret_123")
    second = post_charge(key="needs-a-key")
    assert second.status_code == 201
    assert Charge.objects.count() == 1 and Charge.objects.get().status == "succeeded"


@override_settings(PAYMENTS_COMPLETER_STALE_SECONDS=0)
def test_completer_counts_a_missing_api_key_as_still_pending_not_an_error(post_charge, pay_provider,
                                                                         fake_provider):
    _expire_api_key(pay_provider)
    post_charge(key="needs-a-key")

    assert complete_stale() == {"charges": 0, "refunds": 0, "still_pending": 1, "errors": 0}

    credential_rotate(provider=pay_provider, purpose="api_key", value="sk_test_provider_secret_123")
    assert complete_stale()["charges"] == 1
    assert Charge.objects.get().status == "succeeded" and len(fake_provider.charges) == 1
