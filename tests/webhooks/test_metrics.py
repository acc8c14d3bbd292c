"""/metrics shows the webhook backlog from the database, whichever process did the work."""

from webhooks.models import WebhookEvent


def _open_lines(text):
    return sorted(line for line in text.splitlines() if line.startswith("webhook_events_open{"))


def test_backlog_gauge_counts_open_events_by_provider_and_status(client, sender_of):
    sender = sender_of("standard")
    for n in range(3):
        event_id, body = sender.body(event_id=f"evt_backlog_{n}")
        assert sender.post(client, body, sender.headers(body, event_id)).status_code == 200
    WebhookEvent.objects.filter(event_id="evt_backlog_0").update(status="dead")
    WebhookEvent.objects.filter(event_id="evt_backlog_1").update(status="processed")

    lines = _open_lines(client.get("/metrics").content.decode())

    slug = sender.provider.slug
    assert f'webhook_events_open{{provider="{slug}",status="dead"}} 1.0' in lines
    assert f'webhook_events_open{{provider="{slug}",status="received"}} 1.0' in lines
    assert not any('status="processed"' in line for line in lines)


def test_metrics_answers_post_with_a_json_405(client, db):
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "method_not_allowed"
