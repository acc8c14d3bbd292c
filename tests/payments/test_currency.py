"""`currency`: three ASCII letters naming an ISO 4217 code, stored lower case.

Python's str.upper() maps "ſ" to "S", "ı" to "I" and "ß" to "SS", so an upper-cased
lookup alone let "uſd" through as "USD" while storing and sending "uſd".
"""

from __future__ import annotations

import pytest

from payments.models import Charge

from .conftest import CHARGE

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("currency", ["u\u017fd", "\u0131nr", "\u00dfp", "USD ", " usd", "usd\n", "u\u0455d", "\u212aes",
                                      "\uff55\uff53\uff44", "usdx", "", "xyz", 840, None, ["usd"]])
def test_anything_but_three_ascii_letters_of_a_known_code_is_a_400(post_charge, fake_provider, currency):
    response = post_charge({**CHARGE, "currency": currency})
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["param"] == "currency"
    assert not Charge.objects.exists() and not fake_provider.requests


@pytest.mark.parametrize(("given", "stored"), [("usd", "usd"), ("EUR", "eur"), ("iNr", "inr")])
def test_a_known_code_in_any_ascii_case_is_stored_and_sent_lower_case(post_charge, fake_provider, given, stored):
    response = post_charge({**CHARGE, "currency": given})
    assert response.status_code == 201 and response.json()["currency"] == stored
    assert Charge.objects.get().currency == stored
    assert fake_provider.requests[0]["body"]["currency"] == stored
