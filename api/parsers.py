"""The API's JSON parser: strict JSON whose strings a database can store, or a 400.

DRF's parser accepts what PostgreSQL cannot store (NUL characters, lone UTF-16
surrogates) and lets deeply nested input crash the decoder; either would surface as a
500 deep inside a view. Here they are a clear `invalid_json` at the door.
"""

from __future__ import annotations

import json
import math
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def reject_constant(name: str):
    """json.loads' parse_constant: NaN and Infinity parse in Python but are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def finite_float(text: str) -> float:
    """json.loads' parse_float: 1e400 would become inf, which no JSON column holds."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def check_storable(data: object) -> None:
    """Raise ValueError for NUL or lone surrogates in any string, or nesting past MAX_DEPTH."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                raise ValueError("a string contains a NUL character or an unpaired surrogate")
        elif isinstance(value, dict):
            stack.extend((k, depth + 1) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("JSON parse error: the body is not valid UTF-8") from None
        try:
            data = json.loads(text, parse_constant=reject_constant, parse_float=finite_float)
            check_storable(data)
        except json.JSONDecodeError as err:
            # err.msg and its place, without the document that str(err) may quote.
            raise ParseError(f"JSON parse error: the body is not valid JSON: {err.msg} at line "
                             f"{err.lineno} column {err.colno}") from None
        except RecursionError:
            raise ParseError("JSON parse error: the body is nested too deeply") from None
        except ValueError as err:  # reject_constant, finite_float, check_storable: already short
            raise ParseError(f"JSON parse error: {err}") from None
        return data
