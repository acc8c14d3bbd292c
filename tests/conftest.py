"""Shared fixtures. Signing helpers and fakes live in tests/support/."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from api.models import api_key_create
from integrations.credentials import credential_rotate
from integrations.models import Provider


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """TEST_DB_SUFFIX lets several test runs share a machine without sharing a database."""
    from django.conf import settings

    suffix = os.environ.get("TEST_DB_SUFFIX")
    if suffix:
        db = settings.DATABASES["default"]
        test = db.setdefault("TEST", {})
        base = test.get("NAME") or f"test_{db['NAME']}"
        if base.endswith(".sqlite3"):
            test["NAME"] = base.replace(".sqlite3", f"_{suffix}.sqlite3")
        else:
            test["NAME"] = f"{base}_{suffix}"


def pytest_collection_modifyitems(config, items):
    """`postgres` tests need real row locks and concurrency; make test runs them in its
    PostgreSQL stage and deselects them on SQLite. Run directly on SQLite, say why."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        reason = "needs PostgreSQL: run with DATABASE_URL=postgres://... (make test does)"
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _clear_cache(request):
    """Circuit, rate-limit and token state lives in the shared cache: start each test clean."""
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if "transactional_db" in names or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif marker or "db" in names:
        request.getfixturevalue("db")
    else:
        return
    cache.clear()


@pytest.fixture
def provider(db) -> Provider:
    """A sandbox-kind provider with an API key and a webhook secret."""
    provider = Provider.objects.create(slug="sandbox", name="Sandbox", kind="sandbox",
                                       base_url="http://127.0.0.1:8099")
    credential_rotate(provider=provider, purpose="api_key", value="sk_test_provider_secret_123")
    credential_rotate(provider=provider, purpose="webhook_secret",
                      value="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    return provider


@pytest.fixture
def api_key(db) -> str:
    _, raw = api_key_create(consumer_name="shop")
    return raw


@pytest.fixture
def api_client(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"
