"""Odd but possible deliveries: never a 500, always the contract's answer."""

import json

import pytest

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
