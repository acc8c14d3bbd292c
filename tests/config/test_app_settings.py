"""AppSettings: an app's namespaced settings object over flat, prefixed Django settings."""

import pytest
from django.test import override_settings

from config.app_settings import AppSettings
from idempotency.conf import idempotency_settings
from integrations.conf import integration_settings
from payments.conf import payment_settings

demo_settings = AppSettings("DEMO_", {"LIMIT": 10, "NAME": None})


def test_an_unset_setting_is_its_default():
    assert demo_settings.LIMIT == 10
    assert demo_settings.NAME is None


def test_override_settings_applies_at_once_and_ends_with_the_block():
    with override_settings(DEMO_LIMIT=3):
        assert demo_settings.LIMIT == 3
    assert demo_settings.LIMIT == 10


def test_an_unknown_name_raises_attribute_error_naming_the_prefixed_setting():
    with pytest.raises(AttributeError, match="DEMO_LIMT is not a setting") as info:
        demo_settings.LIMT  # noqa: B018 - the attribute access is the test
    assert "DEMO_LIMIT" in str(info.value)  # the message lists what does exist


def test_setting_name_is_the_django_setting_to_set():
    assert demo_settings.setting_name("LIMIT") == "DEMO_LIMIT"


@pytest.mark.parametrize(("app_settings", "django_name", "name"), [
    (integration_settings, "INTEGRATIONS_RETRY_AFTER_MAX", "RETRY_AFTER_MAX"),
    (payment_settings, "PAYMENTS_MAX_AMOUNT", "MAX_AMOUNT"),
    (idempotency_settings, "IDEMPOTENCY_LOCK_TIMEOUT_SECONDS", "LOCK_TIMEOUT_SECONDS"),
])
def test_each_apps_settings_read_the_django_settings_deployments_already_use(app_settings, django_name, name):
    with override_settings(**{django_name: 7}):
        assert getattr(app_settings, name) == 7
