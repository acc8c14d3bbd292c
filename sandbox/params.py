"""Reading request bodies and checking the parameters every capability shares."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

from sandbox.messages import SandboxRequest, invalid


def parse_json(body: bytes) -> object:
    """The JSON body (`{}` when empty); anything else is a 400."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise invalid("The body is not valid JSON.") from err


def parse_body(request: SandboxRequest) -> dict:
    """POST parameters: a JSON object, or Stripe's form encoding (`metadata[key]=value`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # `curl -d '{...}'` labels JSON as a form: a body that opens like JSON is read as JSON.
    looks_like_json = request.body.lstrip()[:1] in (b"{", b"[")
    if content_type == "application/x-www-form-urlencoded" and not looks_like_json:
        return _parse_form(request.body)
    data = parse_json(request.body)
    if not isinstance(data, dict):
        raise invalid("The body must be a JSON object.")
    return data


def _parse_form(body: bytes) -> dict:
    try:
        pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as err:
        raise invalid("The body is not valid UTF-8.") from err
    data: dict = {}
    for name, values in pairs.items():
        value = values[-1]
        match = re.fullmatch(r"(\w+)\[(\w+)\]", name)
        if match:
            data.setdefault(match.group(1), {})[match.group(2)] = value
        elif name == "amount" and value.isascii() and value.isdigit():
            data[name] = int(value)  # a form has only strings; Stripe reads amounts as integers
        else:
            data[name] = value
    return data


def only(data: dict, allowed: set[str]) -> None:
    """Refuse a parameter outside `allowed`, as Stripe does (`parameter_unknown`)."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise invalid(f"Received unknown parameter: {unknown[0]}", param=unknown[0],
                      code="parameter_unknown")


def metadata(value: object) -> dict[str, str]:
    """Stripe keeps metadata as strings: numbers are converted, anything nested is refused."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 50:
        raise invalid("metadata must be an object of at most 50 keys.", param="metadata")
    result = {}
    for key, item in value.items():
        if isinstance(item, dict | list) or item is None or len(str(key)) > 40 or len(str(item)) > 500:
            raise invalid("metadata values must be strings or numbers (keys up to 40 characters, "
                          "values up to 500).", param=f"metadata[{key}]")
        result[str(key)] = str(item).lower() if isinstance(item, bool) else str(item)
    return result
