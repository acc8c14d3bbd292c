"""The normalised form: what makes two inputs the same cache entry and the same batch lookup."""

import pytest

from addresses.normalize import normalize_address


@pytest.mark.parametrize(("raw", "expected"), [
    ("10 Downing Street, London", "10 downing street, london"),
    ("  10   DOWNING street ,,London  ", "10 downing street, london"),
    ("10\tDowning\nStreet , , London,", "10 downing street, london"),
    ("ＴＥＳＴ １", "test 1"),  # NFKC: full-width letters and digits
    ("Straße", "strasse"),  # case-folded, not just lower-cased
    (" , ", ""),
])
def test_spacing_case_commas_and_unicode_forms_collapse(raw, expected):
    assert normalize_address(raw) == expected
