"""Bad input at the API's door is a 400 in the contract's shape, never a 500."""

import pytest

BAD_BODIES = [
    pytest.param(b'{"amount": 100, "currency": "usd", "source": "tok_visa", "x": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b'{"amount": 100, "currency": "usd", "source": "tok_visa", "metadata": {"a": "x\\u0000y"}}',
                 id="nul-in-metadata"),
    pytest.param(b'{"amount": 100, "currency": "usd", "source": "tok_visa", "metadata": {"x\\u0000": "y"}}',
                 id="nul-in-key"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested"),
    pytest.param(b'{"amount": NaN, "currency": "usd", "source": "tok_visa"}', id="nan"),
    pytest.param(b'{"amount": 100, "currency": "usd", "source": "tok_visa", "metadata": {"a": 1e400}}',
                 id="float-out-of-range"),
    pytest.param(b"\xff\xfe not utf-8", id="not-utf8"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_unstorable_or_malformed_json_is_invalid_json(api_client, provider, body):
    response = api_client.generic("POST", "/api/v1/charges", body, content_type="application/json",
                                  HTTP_IDEMPOTENCY_KEY="k-bad-input")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["type"] == "invalid_json"


def test_a_later_good_request_with_the_same_key_is_not_blocked(api_client, provider):
    """A refused body stores nothing under the key."""
    api_client.generic("POST", "/api/v1/charges", b'{"x": "\\ud800"}', content_type="application/json",
                       HTTP_IDEMPOTENCY_KEY="k-reuse")
    from idempotency.models import IdempotencyRecord

    assert not IdempotencyRecord.objects.filter(key="k-reuse").exists()


@pytest.mark.parametrize("limit", ["\u00b2", "\u0663", "1e3", "-1", "0", "101", "9" * 40])
def test_bad_limit_is_a_400_naming_limit(api_client, limit):
    response = api_client.get("/api/v1/charges", {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "limit"
