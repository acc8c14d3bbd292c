"""Unknown machine URLs and unhandled errors answer in the contract's JSON shape."""

import pytest
from django.test import Client
from django.urls import path

from config import urls as root_urls


def boom(request):
    raise RuntimeError("secret detail sk_live_leak_canary must not be shown")


urlpatterns = [path("api/v1/_boom", boom), *root_urls.urlpatterns]
handler404 = root_urls.handler404
handler500 = root_urls.handler500


def test_unknown_api_path_is_json_404(client, db):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_unknown_admin_path_stays_html(admin_client):
    response = admin_client.get("/definitely-not-here")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.urls("tests.config.test_errors")
def test_unhandled_error_is_json_500_without_details(db):
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/_boom")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "api_error"
    assert b"sk_live_leak_canary" not in response.content
