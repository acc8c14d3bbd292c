"""The normalised form of an address: what the cache key and the batch deduplication use."""

from __future__ import annotations

import re
import unicodedata

# Runs of whitespace and commas, in any mix, become one separator: "10,  Downing St ,London"
# and "10 downing st, london" are the same query.
_SEPARATORS = re.compile(r"[\s,]*,[\s,]*")
_SPACES = re.compile(r"\s+")


def normalize_address(text: str) -> str:
    """Unicode NFKC, trimmed (spaces and commas at the ends too), case-folded, runs of
    whitespace collapsed to one space and runs of commas (with their spaces) to ", "."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SEPARATORS.sub(", ", text)
    text = _SPACES.sub(" ", text)
    return text.strip(" ,")
