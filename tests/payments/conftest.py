"""Fixtures for payments and idempotency tests: a loopback fake provider wired to `provider`."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.fake_provider import FakeProvider


@pytest.fixture
def fake_provider():
    fake = FakeProvider(gate_timeout=15.0)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def pay_provider(provider, fake_provider):
    """The `provider` fixture pointed at the fake, with a fast, test-sized policy."""
    provider.base_url = fake_provider.base_url
    provider.connect_timeout = 1.0
    provider.read_timeout = 5.0
    provider.deadline = 20.0
    provider.max_attempts = 2
    provider.backoff_base = 0.01
    provider.backoff_max = 0.02
    provider.rate_limit_requests = 100000
    provider.circuit_failure_threshold = 1000
    provider.save()
    return provider


CHARGE = {"amount": 1500, "currency": "usd", "source": "tok_visa", "description": "Order 42",
          "metadata": {"order": "42"}}


@pytest.fixture
def post_charge(api_client, pay_provider):
    """POST /api/v1/charges with a key (a fresh one unless given); returns the response."""

    def post(body=None, key: str | None = None, client=None, **extra):
        key = key if key is not None else uuid.uuid4().hex
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not False else {}
        payload = CHARGE if body is None else body
        data = payload if isinstance(payload, str) else json.dumps(payload)
        return (client or api_client).post("/api/v1/charges", data=data, content_type="application/json",
                                           **headers, **extra)

    return post
