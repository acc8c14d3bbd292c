"""String fields of a charge are JSON strings taken as sent, as the schema describes them
(found by the schemathesis fuzzer: DRF's CharField coerced numbers and trimmed whitespace)."""

from __future__ import annotations

import pytest

from payments.models import Charge

from .conftest import CHARGE

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("field", "value"), [("description", 0), ("source", 1.5), ("provider", 7),
                                              ("description", True), ("source", {"token": "tok_visa"})])
def test_a_number_or_other_json_value_is_not_a_string(post_charge, fake_provider, field, value):
    response = post_charge({**CHARGE, field: value})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == field
    assert not Charge.objects.exists() and not fake_provider.requests


@pytest.mark.parametrize("source", [" ", "\u00a0", " tok_visa "])
def test_whitespace_is_kept_not_trimmed_into_a_blank(post_charge, fake_provider, source):
    """The schema's minLength 1 allows " "; the provider, not this API, judges the token."""
    response = post_charge({**CHARGE, "source": source, "description": " Order 42 "})
    assert response.status_code == 201, response.content
    assert fake_provider.requests[0]["body"]["source"] == source
    assert Charge.objects.get().description == " Order 42 "


def test_an_empty_source_is_still_refused(post_charge):
    assert post_charge({**CHARGE, "source": ""}).json()["error"]["param"] == "source"
