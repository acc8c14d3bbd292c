"""X-Request-ID on every response and every log line; no secrets in logs."""

import io
import json
import logging

from django.conf import settings

from config.request_id import RequestIDLogFilter, bound
from integrations.credentials import credential_rotate, credential_value


def test_request_id_is_created_when_absent(client, db):
    response = client.get("/health/live")
    assert len(response["X-Request-ID"]) == 32


def test_request_id_from_the_caller_is_echoed(client, db):
    response = client.get("/health/live", HTTP_X_REQUEST_ID="req-abc.123")
    assert response["X-Request-ID"] == "req-abc.123"


def test_an_implausible_request_id_is_replaced(client, db):
    response = client.get("/health/live", HTTP_X_REQUEST_ID="bad id\nwith newline" + "x" * 200)
    assert response["X-Request-ID"] != "bad id"
    assert len(response["X-Request-ID"]) == 32


def test_error_responses_carry_the_request_id_too(client, db):
    response = client.get("/api/v1/whoami", HTTP_X_REQUEST_ID="r-401")
    assert response.status_code == 401
    assert response["X-Request-ID"] == "r-401"


def json_handler():
    """A handler built from the project's own LOGGING formatter and filter."""
    from pythonjsonlogger.json import JsonFormatter

    fmt = settings.LOGGING["formatters"]["json"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(fmt["fmt"], rename_fields=fmt["rename_fields"]))
    handler.addFilter(RequestIDLogFilter())
    return handler, stream


def test_log_lines_are_json_with_the_request_id():
    handler, stream = json_handler()
    logger = logging.getLogger("tests.request_id")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with bound("rid-42"):
            logger.info("inside")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["request_id"] == "rid-42" and inside["message"] == "inside" and inside["level"] == "INFO"
    assert outside["request_id"] is None


def test_requests_touching_credentials_log_no_plaintext(admin_client, provider, caplog):
    from django.db import connection

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    # Log every SQL statement too (as DEBUG=1 would): parameters must show ciphertext only.
    connection.force_debug_cursor = True
    try:
        secret = "sk_live_caplog_canary_31337"
        credential_rotate(provider=provider, purpose="api_key", value=secret)
        assert credential_value(provider=provider, purpose="api_key") == secret
        admin_client.get(f"/admin/integrations/provider/{provider.pk}/change/")
        admin_client.get("/admin/integrations/credential/")
        admin_client.get("/health/ready")
    finally:
        connection.force_debug_cursor = False
    assert caplog.records, "expected the requests to log something (SQL at DEBUG)"
    assert secret not in caplog.text
    assert "sk_test_provider_secret_123" not in caplog.text


def test_djangos_own_4xx_log_line_carries_the_request_id(client, db):
    """django.request logs 4xx/5xx after the middleware chain: the id must still be there."""
    handler, stream = json_handler()
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        client.get("/api/v1/whoami", HTTP_X_REQUEST_ID="rid-4xx-line")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "django.request logged nothing for a 401"
    assert {line["request_id"] for line in lines} == {"rid-4xx-line"}


def test_the_request_id_is_cleared_when_the_request_finishes(client, db):
    from config.request_id import current

    client.get("/health/live", HTTP_X_REQUEST_ID="rid-gone-after")
    assert current() is None
