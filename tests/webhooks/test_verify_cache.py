"""The verification cache: on by default, fewer queries; a change saved through the ORM
applies at once in its own process and within the recheck (0.1 s) in every other one (a
shared version); only writes that bypass Django's signals wait for the TTL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations import shared_state
from integrations.credentials import credential_rotate
from integrations.models import Credential, Provider
from tests.support.databases import database_url
from webhooks import verify_cache
from webhooks.intake import intake_target

ROOT = Path(__file__).resolve().parents[2]


def _deliver(sender, client, secret=None):
    """(status, reads of provider/credential tables) for one signed delivery."""
    event_id, body = sender.body()
    with CaptureQueriesContext(connection) as queries:
        response = sender.post(client, body, sender.headers(body, event_id, secret=secret))
    reads = [q["sql"] for q in queries
             if "integrations_provider" in q["sql"] or "integrations_credential" in q["sql"]]
    return response.status_code, len(reads)


def _as_another_process_would(change):
    """Apply `change` without this process's signals (so its entries are not cleared),
    then replace the shared version as the other process's save signal does."""
    change()
    verify_cache.bump()


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(verify_cache, "_clock", lambda: now[0])
    return now


def test_on_by_default_repeat_deliveries_skip_both_reads(sender_of, client):
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)
    assert _deliver(sender, client) == (200, 0)
    assert _deliver(sender, client) == (200, 0)


def test_off_every_delivery_reads_provider_and_secrets(sender_of, client, settings):
    settings.WEBHOOK_VERIFY_CACHE_SECONDS = 0
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)
    assert _deliver(sender, client) == (200, 2)


def test_entries_expire_after_the_ttl(sender_of, client, clock):
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)
    clock[0] += 4.9
    assert _deliver(sender, client) == (200, 0)
    clock[0] += 0.2
    assert _deliver(sender, client) == (200, 2)


def test_a_rotation_in_this_process_is_seen_at_once(sender_of, client):
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)
    credential_rotate(provider=sender.provider, purpose="webhook_secret", value="whsec_rotated_now")
    assert _deliver(sender, client)[0] == 400
    assert _deliver(sender, client, secret="whsec_rotated_now")[0] == 200


def test_disabling_a_provider_in_this_process_is_seen_at_once(sender_of, client):
    sender = sender_of("stripe")
    assert _deliver(sender, client)[0] == 200
    provider = Provider.objects.get(pk=sender.provider.pk)
    provider.enabled = False
    provider.save()
    assert _deliver(sender, client)[0] == 404


RECHECK = 0.1  # WEBHOOK_VERIFY_CACHE_RECHECK_SECONDS' default


def test_a_provider_disabled_by_another_process_is_404_here_within_the_recheck(sender_of, client, clock):
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)
    assert _deliver(sender, client) == (200, 0)  # cached here
    _as_another_process_would(lambda: Provider.objects.filter(pk=sender.provider.pk).update(enabled=False))
    clock[0] += RECHECK - 0.001
    assert _deliver(sender, client) == (200, 0)  # the version read 0.099 s ago is still trusted
    clock[0] += 0.001
    assert _deliver(sender, client)[0] == 404  # read again: changed; far inside the 5 s TTL


def test_with_recheck_zero_another_processs_change_applies_at_the_next_delivery(sender_of, client, clock,
                                                                                  settings):
    settings.WEBHOOK_VERIFY_CACHE_RECHECK_SECONDS = 0
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)
    assert _deliver(sender, client) == (200, 0)  # still cached: the version is read, unchanged
    _as_another_process_would(lambda: Provider.objects.filter(pk=sender.provider.pk).update(enabled=False))
    assert _deliver(sender, client)[0] == 404  # same instant


def test_the_version_is_read_once_per_recheck_not_per_delivery(sender_of, client, clock, monkeypatch):
    sender = sender_of("stripe")
    reads = []
    real = verify_cache.shared_version
    monkeypatch.setattr(verify_cache, "shared_version", lambda: reads.append(1) or real())
    for _ in range(5):
        assert _deliver(sender, client)[0] == 200
    assert len(reads) == 1
    clock[0] += RECHECK
    assert _deliver(sender, client) == (200, 0)
    assert len(reads) == 2


def test_a_rotation_without_grace_in_another_process_stops_the_old_secret_within_the_recheck(
        sender_of, client, clock):
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)

    def rotate():
        Credential.objects.filter(provider=sender.provider).update(active_until=timezone.now())
        replacement = Credential(provider=sender.provider, environment=sender.provider.environment,
                                 purpose="webhook_secret", version=99, fingerprint="x", created=timezone.now())
        replacement.value = "whsec_from_elsewhere"
        Credential.objects.bulk_create([replacement])  # bulk_create sends no signals either

    _as_another_process_would(rotate)
    clock[0] += RECHECK
    assert _deliver(sender, client)[0] == 400
    assert _deliver(sender, client, secret="whsec_from_elsewhere")[0] == 200


def test_every_save_and_delete_replaces_the_shared_version_when_it_commits(
        sender_of, django_capture_on_commit_callbacks):
    sender = sender_of("stripe")
    versions = [verify_cache.shared_version()]

    def replaced() -> bool:
        versions.append(shared_state.store().get(verify_cache.VERSION_KEY))
        return versions[-1] not in versions[:-1]

    provider = Provider.objects.get(pk=sender.provider.pk)
    changes = [
        provider.save,
        lambda: credential_rotate(provider=provider, purpose="webhook_secret", value="whsec_again"),
        lambda: Credential.objects.filter(provider=provider).first().delete(),
    ]
    for change in changes:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with transaction.atomic():
                change()
                # Not before the commit: no other process can read the change yet.
                assert not replaced()
        assert callbacks and replaced()


def test_writes_that_bypass_signals_are_seen_within_the_ttl(sender_of, client, clock):
    sender = sender_of("stripe")
    credential_rotate(provider=sender.provider, purpose="webhook_secret", value="whsec_next",
                      grace=timedelta(hours=1))
    assert _deliver(sender, client)[0] == 200  # old secret, in its grace period; now cached
    # A raw update (no signals anywhere): the documented, TTL-bounded case.
    Credential.objects.filter(provider=sender.provider, active_until__isnull=False).update(
        active_until=timezone.now() - timedelta(seconds=1))
    clock[0] += 4.9
    assert _deliver(sender, client)[0] == 200
    clock[0] += 0.2
    assert _deliver(sender, client)[0] == 400
    assert _deliver(sender, client, secret="whsec_next")[0] == 200


def test_a_lost_version_reloads_and_an_unreachable_cache_caches_nothing(sender_of, client, monkeypatch, clock):
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)
    shared_state.store().delete(verify_cache.VERSION_KEY)  # expired or flushed: a new one, a reload
    clock[0] += RECHECK
    assert _deliver(sender, client) == (200, 2)
    assert _deliver(sender, client) == (200, 0)

    class Down:
        def __getattr__(self, name):
            raise ConnectionError("shared state unreachable")

    monkeypatch.setattr(shared_state, "store", Down)
    clock[0] += RECHECK
    assert _deliver(sender, client) == (200, 2)
    assert _deliver(sender, client) == (200, 2)  # not even within the recheck


def test_unknown_and_disabled_slugs_are_never_cached(client, sender_of):
    sender = sender_of("stripe")
    Provider.objects.filter(pk=sender.provider.pk).update(enabled=False)
    for i in range(5):
        assert client.post(f"/webhooks/nope-{i}/", data=b"{}", content_type="application/json").status_code == 404
    assert _deliver(sender, client)[0] == 404
    assert verify_cache._entries == {}


def test_the_secrets_are_not_in_the_targets_repr(sender_of):
    sender = sender_of("standard")
    target = intake_target(sender.provider.slug)
    assert target.secrets_valid_at(timezone.now()) == [sender.secret]
    assert sender.secret not in repr(target)


# The other process: disables the provider through the ORM, as the admin would.
DISABLE = """
import sys, django
django.setup()
from integrations.models import Provider
provider = Provider.objects.get(slug=sys.argv[1])
provider.enabled = False
provider.save()
"""


@pytest.mark.django_db(transaction=True)
def test_a_provider_disabled_in_a_real_other_process_is_404_here(sender_of, client, clock):
    sender = sender_of("stripe")
    assert _deliver(sender, client) == (200, 2)
    assert _deliver(sender, client) == (200, 0)  # cached in this process
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings"}
    subprocess.run([sys.executable, "-c", DISABLE, sender.provider.slug], cwd=ROOT, env=env, check=True,
                   timeout=60)
    assert _deliver(sender, client) == (200, 0)  # within the recheck: the version read before is trusted
    clock[0] += RECHECK
    assert _deliver(sender, client)[0] == 404  # far inside the 5 s TTL: the version did it


def test_a_new_version_drops_every_entry_so_old_secrets_do_not_linger(sender_of, client, clock):
    first, second = sender_of("stripe"), sender_of("github")
    assert _deliver(first, client)[0] == 200 and _deliver(second, client)[0] == 200
    assert set(verify_cache._entries) == {("target", first.provider.slug), ("target", second.provider.slug)}
    verify_cache.bump()  # a change somewhere
    clock[0] += RECHECK
    assert _deliver(first, client) == (200, 2)
    assert set(verify_cache._entries) == {("target", first.provider.slug)}


def test_after_a_commit_the_version_is_replaced_before_the_local_entries_go(monkeypatch):
    """Cleared first, another thread of this process could read the old version again
    and keep an entry it loaded before the change, for up to the recheck."""
    calls = []
    monkeypatch.setattr(verify_cache, "bump", lambda: calls.append("bump"))
    monkeypatch.setattr(verify_cache, "clear", lambda **kw: calls.append("clear"))
    verify_cache._after_commit()
    assert calls == ["bump", "clear"]
