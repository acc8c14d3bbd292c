"""Bearer API keys: create_api_key, authentication, revocation, the error shape."""

import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from api.models import ApiKey, hash_key


def whoami(key=None, header=None):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    elif key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get("/api/v1/whoami")


def test_create_api_key_prints_the_key_alone_on_the_last_line(db):
    out = io.StringIO()
    call_command("create_api_key", "billing-service", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("pgw_") and " " not in key
    assert ApiKey.objects.get().digest == hash_key(key)
    response = whoami(key)
    assert response.status_code == 200
    assert response.json() == {"consumer": "billing-service", "key_prefix": key[:12]}


def test_key_is_stored_hashed_only(api_key):
    row = ApiKey.objects.get()
    assert api_key not in (row.digest, row.prefix, row.label)


@pytest.mark.parametrize("header", ["Bearer pgw_wrong", "Bearer ", "Token abc", "Bearer a b", "Basic Zm9vOmJhcg=="])
def test_wrong_or_malformed_key_is_401_with_error_shape(db, header):
    response = whoami(header=header)
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["type"] == "authentication_failed"
    assert body["error"]["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_missing_key_is_401(db):
    response = whoami()
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_required"


def test_revoked_key_is_401(api_key):
    ApiKey.objects.get().revoke()
    response = whoami(api_key)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_failed"


def test_a_second_key_for_the_same_consumer_works_and_revoking_one_keeps_the_other(api_key):
    out = io.StringIO()
    call_command("create_api_key", "shop", stdout=out)
    second = out.getvalue().strip().splitlines()[-1]
    ApiKey.objects.get(digest=hash_key(api_key)).revoke()
    assert whoami(api_key).status_code == 401
    assert whoami(second).json()["consumer"] == "shop"


def test_create_api_key_rejects_empty_name(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_key", "  ", stdout=io.StringIO())
    assert not ApiKey.objects.exists()


def test_admin_revoke_action(admin_client, api_key):
    key = ApiKey.objects.get()
    response = admin_client.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert response.status_code == 302
    assert whoami(api_key).status_code == 401
