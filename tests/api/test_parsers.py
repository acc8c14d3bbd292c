"""The invalid_json message says what is wrong with the body: its encoding, or its JSON."""

from __future__ import annotations

import pytest


def post(api_client, body: bytes):
    return api_client.generic("POST", "/api/v1/charges", body, content_type="application/json",
                              HTTP_IDEMPOTENCY_KEY="k-parser")


@pytest.mark.parametrize(("body", "message"), [
    pytest.param(b"\xff\xfe{}", "JSON parse error: the body is not valid UTF-8", id="latin-1"),
    pytest.param(b'{"a": "\xed\xa0\x80"}', "JSON parse error: the body is not valid UTF-8", id="utf8-surrogate"),
    pytest.param(b"\n ", "JSON parse error: the body is not valid JSON: Expecting value at line 2 column 2",
                 id="blank"),
    pytest.param(b"{not json}", "JSON parse error: the body is not valid JSON: Expecting property "
                 "name enclosed in double quotes at line 1 column 2", id="not-json"),
    pytest.param('{"a": 1}\n{"b": "é"}'.encode(), "JSON parse error: the body is not valid JSON: Extra data "
                 "at line 2 column 1", id="two-documents"),
    pytest.param(b'{"amount": NaN}', "JSON parse error: NaN is not valid JSON", id="nan"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "JSON parse error: the body is nested too deeply", id="deep"),
])
def test_the_message_names_the_problem(api_client, provider, body, message):
    response = post(api_client, body)
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_json", "message": message}


def test_the_message_does_not_echo_the_body(api_client, provider):
    response = post(api_client, b'{"source": "tok_secret_value", oops}')
    assert "tok_secret_value" not in response.json()["error"]["message"]
