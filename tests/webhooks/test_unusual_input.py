"""Odd but possible deliveries: never a 500, always the contract's answer."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhooks.models import WebhookEvent


@pytest.mark.parametrize("timestamp", ["\u00b2", "\u0663\u0663", "12e3", "-5", " "])
def test_non_ascii_or_odd_standard_timestamp_is_invalid_signature(client, sender_of, timestamp):
    sender = sender_of("standard")
    event_id, body = sender.body()
    headers = sender.headers(body, event_id)
    headers["webhook-timestamp"] = timestamp
    response = sender.post(client, body, headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()


def test_non_ascii_stripe_timestamp_is_invalid_signature(client, sender_of):
    sender = sender_of("stripe")
    event_id, body = sender.body()
    headers = {"Stripe-Signature": "t=\u00b2,v1=" + "0" * 64}
    response = sender.post(client, body, headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_signature"


def test_signed_but_absurdly_nested_body_is_invalid_payload(client, sender_of):
    sender = sender_of("standard")
    body = b'{"type": "x", "data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    headers = sender.headers(body, "evt_nested")
    response = sender.post(client, body, headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_payload"
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("text", ["x\\u0000y", "\\ud800"])
def test_signed_body_with_unstorable_characters_is_answered_and_never_a_500(client, sender_of, text):
    """JSON may carry \\u0000 or a lone surrogate, which PostgreSQL cannot store in jsonb.
    Either the event is stored (raw body intact) or the delivery is refused as a payload
    problem; it is never a 500 that makes the provider retry forever."""
    sender = sender_of("standard")
    body = ('{"type": "test.event", "data": {"note": "' + text + '"}}').encode()
    headers = sender.headers(body, "evt_odd_chars")
    response = sender.post(client, body, headers)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        event = WebhookEvent.objects.get(event_id="evt_odd_chars")
        assert bytes(event.raw_body) == body
    else:
        assert response.json()["error"]["type"] == "invalid_payload"
        assert not WebhookEvent.objects.exists()


def test_replay_command_takes_several_id_flags(db, sender_of, client):
    import io

    from django.core.management import call_command

    sender = sender_of("standard")
    for n in (1, 2):
        event_id, body = sender.body(event_id=f"evt_multi_{n}")
        assert sender.post(client, body, sender.headers(body, event_id)).status_code == 200
    WebhookEvent.objects.update(status="dead")
    out = io.StringIO()
    call_command("replay_webhooks", "--id", "evt_multi_1", "--id", "evt_multi_2", stdout=out)
    assert "2 event(s) enqueued" in out.getvalue()
    assert json.dumps(sorted(WebhookEvent.objects.values_list("status", flat=True))) == '["received", "received"]'


def test_replay_command_says_which_ids_it_did_not_find(db, sender_of, client):
    import io

    from django.core.management import call_command

    sender = sender_of("standard")
    event_id, body = sender.body(event_id="evt_known")
    assert sender.post(client, body, sender.headers(body, event_id)).status_code == 200
    WebhookEvent.objects.update(status="dead")
    out = io.StringIO()
    call_command("replay_webhooks", "--id", "evt_known", "evt_ghost", stdout=out)
    assert "not found (or not matching the other filters): evt_ghost" in out.getvalue()
    assert "1 event(s) enqueued" in out.getvalue()


# --- the shortcut that skips the storability walk for plain bodies ----------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=60,
)


@given(value=_json_values, ensure_ascii=st.booleans(),
       encoding=st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]))
def test_the_storability_shortcut_only_skips_values_the_walk_would_accept(value, ensure_ascii, encoding):
    from api.parsers import check_storable
    from webhooks.schemes.base import _plainly_storable

    # json.loads reads all of these encodings; a UTF-16 body's bytes can all be ASCII.
    body = json.dumps(value, ensure_ascii=ensure_ascii).encode(encoding, "surrogatepass")
    if _plainly_storable(body):
        check_storable(json.loads(body))  # must not raise


@pytest.mark.parametrize("body", [
    # 40 levels deep: under Python's recursion limit, over the storable depth.
    b'{"type": "x", "data": ' + b"[" * 40 + b"]" * 40 + b"}",
    # A lone surrogate as raw UTF-8 bytes (no \u escape): json.loads decodes it.
    b'{"type": "x", "data": "\xed\xa0\x80"}',
    # UTF-16 (all bytes ASCII) with a \u0000 escape, which b"\\u" does not find there.
    '{"type": "x", "data": "a\\u0000b"}'.encode("utf-16-le"),
], ids=["40-deep", "raw-surrogate-bytes", "utf-16-nul-escape"])
def test_what_the_shortcut_cannot_rule_out_is_still_checked(client, sender_of, body):
    sender = sender_of("github")  # signs the raw bytes, whatever they decode to
    response = sender.post(client, body, sender.headers(body, "evt_checked"))
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_payload"
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_a_signed_body_with_a_number_json_cannot_hold_is_invalid_payload_not_a_500(client, sender_of, number):
    """Python's json reads NaN and 1e400 (as inf); writing them back to a JSON column fails."""
    sender = sender_of("github")
    body = b'{"type": "x", "data": {"amount": ' + number + b"}}"
    response = sender.post(client, body, sender.headers(body, "evt_number"))
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_payload"
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("value", ["agent\x00nul", "agent\ud800half"])
def test_unstorable_characters_in_a_stored_header_do_not_break_the_row(value):
    from webhooks.schemes.standard import StandardScheme

    kept = StandardScheme().headers_to_store({"user-agent": value, "webhook-id": "msg_1"})
    assert kept["user-agent"].startswith("agent") and "\x00" not in kept["user-agent"]
    assert not any("\ud800" <= ch <= "\udfff" for ch in kept["user-agent"])
    assert kept["webhook-id"] == "msg_1"
