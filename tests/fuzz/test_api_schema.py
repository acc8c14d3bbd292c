"""Schemathesis fuzzes /api/v1/ against the service's own OpenAPI schema, in process.

Every check is on. The run is bounded and seeded, so `make test` gets the same cases each
time in well under a minute; FUZZ_MAX_EXAMPLES and FUZZ_SEED make longer or other runs.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.openapi.checks import RejectedPositiveData

from api.models import ApiKey, hash_key
from config.wsgi import application
from emails import conf as email_conf
from payments import conf as payments_conf
from payments import services
from payments.currencies import ISO_4217

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "50"))
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))

CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {
        "max-examples": MAX_EXAMPLES,
        "database": "none",  # no replay of examples saved by an earlier run: the seed decides
        # The API refuses NUL in any JSON string with `invalid_json` on purpose (PostgreSQL cannot
        # store it; tests/api/test_bad_input.py pins that), which no OpenAPI 3.0 schema can say.
        "allow-x00": False,
        # Unknown query parameters and headers are ignored, as HTTP APIs do, not refused.
        "allow-extra-parameters": False,
        # The test sends a real key; ignored_auth still probes with none and with a wrong one.
        "with-security-parameters": False,
    },
    "checks": {"enabled": True},
})

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG).include(
    path_regex="^/api/v1/")

CODES = sorted(ISO_4217)
EXISTING: dict[str, str] = {}  # the test's provider slug and a charge of its consumer, for the hook


def _is_valid(case, location: ParameterLocation) -> bool:
    return not (case.meta and case.meta.is_negative_at(location))


def _known_currency(letters: str) -> str:
    """A listed code in the generated letters' case pattern: "aBc" becomes e.g. "eUr"."""
    code = CODES[sum(map(ord, letters)) % len(CODES)]
    return "".join(c if o.isupper() else c.lower() for c, o in zip(code, letters, strict=True))


@schemathesis.hook
def before_call(context, case, kwargs):
    """A fresh Idempotency-Key per request, and in valid cases the rules a schema cannot state
    made true: a provider that exists, a code ISO 4217 lists, metadata keys of 1-40 characters
    (propertyNames is OpenAPI 3.1), a cursor this API issued (tests/payments/test_cursor.py
    fuzzes cursors); half the charge ids name a real charge. Schemathesis re-checks a case a
    hook edited before judging the answer."""
    if not EXISTING:  # not this module's test
        return
    charge_id = (case.path_parameters or {}).get("charge_id")
    if isinstance(charge_id, str) and charge_id[-1:] in "02468ace" and _is_valid(case, ParameterLocation.PATH):
        case.path_parameters["charge_id"] = EXISTING["charge"]
    if case.headers and "Idempotency-Key" in case.headers and _is_valid(case, ParameterLocation.HEADER):
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"
    if case.query and _is_valid(case, ParameterLocation.QUERY):
        case.query.pop("cursor", None)
        if "provider" in case.query:
            case.query["provider"] = EXISTING["provider"]
    if isinstance(case.body, dict) and _is_valid(case, ParameterLocation.BODY):
        body = case.body
        if "provider" in body:
            body["provider"] = EXISTING["provider"]
        if isinstance(body.get("currency"), str) and re.fullmatch("[A-Za-z]{3}", body["currency"]):
            body["currency"] = _known_currency(body["currency"])
        if "subject" in body and not (body.get("text") or body.get("html")):
            body["text"] = "hello"  # an email needs a text or an html body: a rule across fields
        if "subject" in body:
            _at_most_recipients(body, email_conf.MAX_RECIPIENTS)
        if isinstance(body.get("metadata"), dict):
            limit = payments_conf.METADATA_MAX_KEY_LENGTH
            body["metadata"] = {(key[:limit] or "k"): value for key, value in body["metadata"].items()}


def _at_most_recipients(body: dict, limit: int) -> None:
    """to, cc and bcc together name at most `limit` addresses: a rule across fields."""
    left = limit
    for field in ("to", "cc", "bcc"):
        value = body.get(field)
        if isinstance(value, list):
            body[field] = value[:max(left, 1 if field == "to" else 0)]
        elif isinstance(value, str) and left < 1 and field != "to":
            del body[field]
        value = body.get(field)
        left -= len(value) if isinstance(value, list) else int(isinstance(value, str))


# Refused by the charge's state, not the request's shape (the 400s the schema documents for refunds).
REFUND_STATE_ERRORS = {"charge_not_refundable", "refund_exceeds_charge"}


@schema.hook
def filter_failure(context, failure, case, response):
    """Keep every failure except a valid refund refused because the charge has nothing left."""
    if isinstance(failure, RejectedPositiveData) and response.status_code == 400:
        return response.json().get("error", {}).get("type") not in REFUND_STATE_ERRORS
    return True


@pytest.fixture
def in_test_transaction():
    """What Django's test Client does: the WSGI handler's close_old_connections would close the
    connection holding the test's transaction after every request."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def existing(api_key, pay_provider):
    """A provider (which also sends email) and a large succeeded charge of the key's consumer,
    named to the hook."""
    consumer = ApiKey.objects.get(digest=hash_key(api_key)).consumer
    pay_provider.email_from = "shop@example.test"  # so an email without `from` has a sender
    pay_provider.save(update_fields=["email_from"])
    charge = services.charge_create(consumer=consumer, provider_slug=pay_provider.slug, amount=99_999_999,
                                    currency="usd", source="tok_visa")
    EXISTING.update(provider=pay_provider.slug, charge=charge.id)
    yield EXISTING
    EXISTING.clear()


@pytest.mark.fuzz
@schema.parametrize()
# One database transaction (and one fake provider) for all of an operation's examples.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api_conforms_to_its_schema(case, db, existing, in_test_transaction, api_key):
    """No 5xx; answers as documented; valid data taken, invalid refused; the key enforced."""
    case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"})
