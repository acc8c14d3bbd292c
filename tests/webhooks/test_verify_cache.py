"""The optional verification cache: fewer queries, exact for changes made in-process,
bounded staleness for changes made elsewhere, off by default."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.credentials import credential_rotate
from integrations.models import Credential, Provider
from webhooks import verify_cache


def _deliver(sender, client, secret=None):
    event_id, body = sender.body()
    with CaptureQueriesContext(connection) as queries:
        response = sender.post(client, body, sender.headers(body, event_id, secret=secret))
    reads = [q["sql"] for q in queries if "integrations_" in q["sql"]]
    return response.status_code, len(reads)


def test_off_by_default_every_delivery_reads_provider_and_secrets(sender_of, client):
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)
    assert _deliver(sender, client) == (200, 2)


@pytest.fixture
def cache_on(settings):
    settings.WEBHOOK_VERIFY_CACHE_SECONDS = 5


def test_when_on_repeat_deliveries_skip_both_reads(cache_on, sender_of, client):
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)
    assert _deliver(sender, client) == (200, 0)


def test_a_rotation_in_this_process_is_seen_at_once(cache_on, sender_of, client):
    sender = sender_of("stripe")
    assert _deliver(sender, client)[0] == 200
    credential_rotate(provider=sender.provider, purpose="webhook_secret", value="whsec_rotated_now")
    assert _deliver(sender, client)[0] == 400
    assert _deliver(sender, client, secret="whsec_rotated_now")[0] == 200


def test_disabling_a_provider_in_this_process_is_seen_at_once(cache_on, sender_of, client):
    sender = sender_of("stripe")
    assert _deliver(sender, client)[0] == 200
    provider = Provider.objects.get(pk=sender.provider.pk)
    provider.enabled = False
    provider.save()
    assert _deliver(sender, client)[0] == 404


def test_a_change_made_elsewhere_is_seen_within_the_ttl(cache_on, sender_of, client, monkeypatch):
    sender = sender_of("stripe")
    clock = [1000.0]
    monkeypatch.setattr(verify_cache, "_clock", lambda: clock[0])
    credential_rotate(provider=sender.provider, purpose="webhook_secret", value="whsec_next",
                      grace=timedelta(hours=1))
    assert _deliver(sender, client)[0] == 200  # old secret, in its grace period; now cached
    # Another process ends the grace period (no signal reaches this one).
    Credential.objects.filter(provider=sender.provider, active_until__isnull=False).update(
        active_until=timezone.now() - timedelta(seconds=1))
    clock[0] += 4.9
    assert _deliver(sender, client)[0] == 200  # still within the 5 s the setting allows
    clock[0] += 0.2
    assert _deliver(sender, client)[0] == 400
    assert _deliver(sender, client, secret="whsec_next")[0] == 200


def test_unknown_slugs_are_never_cached(cache_on, client, db):
    for i in range(5):
        assert client.post(f"/webhooks/nope-{i}/", data=b"{}", content_type="application/json").status_code == 404
    assert verify_cache._entries == {}
