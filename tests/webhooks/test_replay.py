"""Replay (service, admin actions, command), retention, and the admin pages."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.webhooks.factories import charge, stored_event
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_process
from webhooks.replay import webhook_replay
from webhooks.retention import webhook_bodies_purge

ROOT = Path(__file__).resolve().parents[2]
CHANGELIST = "/admin/webhooks/webhookevent/"


@pytest.fixture
def events(provider):
    """One event in each status."""
    return {status: stored_event(provider=provider, type_="charge.succeeded", event_id=f"evt_{status}",
                                 status=status, attempts=5 if status == EventStatus.DEAD else 1)
            for status in EventStatus.values}


def test_replay_resets_dead_and_failed_events_and_records_who(events, task_queue):
    user = User.objects.create_user("ops")
    now = timezone.now()
    WebhookEvent.objects.update(enqueued_at=now)  # all handed on before
    outcome = webhook_replay(events=WebhookEvent.objects.all(), by=user, now=now)
    replayed = {r.previous_status for r in outcome.enqueued}
    assert replayed == {"received", "failed", "dead"}
    assert len(outcome.skipped_final) == 2 and len(outcome.skipped_processing) == 1
    dead = WebhookEvent.objects.get(event_id="evt_dead")
    assert (dead.status, dead.attempts, dead.replayed_by, dead.replayed_at, dead.replay_count) == (
        EventStatus.RECEIVED, 0, user, now, 1)
    assert dead.enqueued_at is None  # for the relay, like a new event
    assert task_queue.size() == 0  # replaying calls no broker
    assert sorted(task_queue.relay()) == sorted(r.pk for r in outcome.enqueued)
    assert sorted(pk for pk, _ in task_queue.take_events()) == sorted(r.pk for r in outcome.enqueued)
    assert WebhookEvent.objects.get(event_id="evt_processed").status == EventStatus.PROCESSED


def test_force_replays_processed_and_ignored_events(events):
    outcome = webhook_replay(events=WebhookEvent.objects.filter(event_id__in=["evt_processed", "evt_ignored"]),
                                 force=True)
    assert {r.previous_status for r in outcome.enqueued} == {"processed", "ignored"}


def test_events_with_a_purged_body_are_not_replayed(events):
    WebhookEvent.objects.filter(event_id="evt_dead").update(body_purged_at=timezone.now())
    outcome = webhook_replay(events=WebhookEvent.objects.filter(event_id="evt_dead"))
    assert outcome.enqueued == [] and len(outcome.skipped_purged) == 1


# --- retention ------------------------------------------------------------------------

def test_retention_purges_bodies_of_old_finished_events_only(provider):
    now = timezone.now()
    old = now - timedelta(days=31)
    purged = stored_event(provider=provider, type_="x", status=EventStatus.PROCESSED, processed_at=old)
    ignored = stored_event(provider=provider, type_="x", status=EventStatus.IGNORED, processed_at=old)
    recent = stored_event(provider=provider, type_="x", status=EventStatus.PROCESSED,
                          processed_at=now - timedelta(days=29))
    dead = stored_event(provider=provider, type_="x", status=EventStatus.DEAD, received_at=old)
    assert webhook_bodies_purge(now=now) == 2
    for event in (purged, ignored):
        event.refresh_from_db()
        assert (bytes(event.raw_body), event.payload, event.body_purged_at) == (b"", None, now)
        assert event.event_id and event.status  # the row stays
    for event in (recent, dead):
        event.refresh_from_db()
        assert bytes(event.raw_body) and event.payload and event.body_purged_at is None
    assert webhook_bodies_purge(now=now) == 0


def test_retention_days_is_a_setting(provider, settings):
    settings.WEBHOOK_BODY_RETENTION_DAYS = 1
    stored_event(provider=provider, type_="x", status=EventStatus.PROCESSED,
                 processed_at=timezone.now() - timedelta(days=2))
    assert webhook_bodies_purge() == 1


# --- command --------------------------------------------------------------------------

def _command(*args) -> str:
    out = StringIO()
    call_command("replay_webhooks", *args, stdout=out)
    return out.getvalue()


def test_command_replays_by_status_and_prints_what_it_enqueued(events, task_queue):
    output = _command("--status", "dead")
    dead = events["dead"]
    assert f"enqueued {dead.pk} sandbox evt_dead charge.succeeded (was dead)" in output
    assert output.strip().endswith("1 event(s) enqueued")
    assert task_queue.relay() == sorted([dead.pk, events["received"].pk])  # the received one was never relayed
    assert sorted(pk for pk, _ in task_queue.take_events()) == sorted([dead.pk, events["received"].pk])


def test_command_needs_force_for_processed_events(events):
    output = _command("--id", "evt_processed")
    assert "skipped 1 processed/ignored event(s) (use --force" in output
    assert output.strip().endswith("0 event(s) enqueued")
    output = _command("--id", "evt_processed", "--force")
    assert "(was processed)" in output


def test_command_filters_by_provider_since_and_ids(events, provider, sender_of):
    other = sender_of("stripe").provider
    stored_event(provider=other, type_="x", event_id="evt_other", status=EventStatus.DEAD)
    WebhookEvent.objects.filter(event_id="evt_failed").update(received_at=datetime(2020, 1, 1, tzinfo=UTC))
    output = _command("--provider", "sandbox", "--since", "2021-01-01")
    assert "evt_dead" in output and "evt_received" in output
    assert "evt_other" not in output and "evt_failed" not in output
    output = _command("--id", str(events["failed"].pk), "evt_other")
    assert "evt_failed" in output and "evt_other" in output


@pytest.mark.parametrize("args, message", [
    ([], "nothing selected"),
    (["--provider", "nope"], "no provider with slug 'nope'"),
    (["--since", "yesterday"], "is not an ISO 8601"),
    (["--since", "2024-13-45"], "is not an ISO 8601"),
])
def test_command_bad_input_is_a_clear_error(args, message, db):
    with pytest.raises(CommandError, match=message):
        _command(*args)


def test_command_bad_input_exits_1_with_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SERVICE_VAR_DIR": str(tmp_path), "DJANGO_DEBUG": "1"}
    cases = {
        ("--since", "not-a-date"): "CommandError: --since 'not-a-date' is not an ISO 8601 date or date-time",
        ("--status", "nope"): "CommandError: --status 'nope' is not one of received, processing, processed, "
                              "ignored, failed, dead",
        (): "CommandError: nothing selected: give --provider, --status, --since or --id",
    }
    for args, line in cases.items():
        result = subprocess.run([sys.executable, "manage.py", "replay_webhooks", *args], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [line]


# --- admin ----------------------------------------------------------------------------

@pytest.fixture
def staff(db):
    user = User.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_webhookevent"))
    return user


def _grant_replay(user):
    user.user_permissions.add(Permission.objects.get(codename="replay_webhookevent"))


def test_changelist_filters_and_searches(client, staff, events, sender_of):
    other = sender_of("stripe").provider
    stored_event(provider=other, type_="x", event_id="evt_of_stripe")
    client.force_login(staff)
    page = client.get(CHANGELIST, {"provider__id__exact": other.pk}).content.decode()
    assert "evt_of_stripe" in page and "evt_dead" not in page
    page = client.get(CHANGELIST, {"status__exact": "dead"}).content.decode()
    assert "evt_dead" in page and "evt_failed" not in page
    page = client.get(CHANGELIST, {"q": "evt_failed"}).content.decode()
    assert "evt_failed" in page and "evt_dead" not in page
    page = client.get(CHANGELIST).content.decode()
    for filter_param in ("status__exact=", "provider__id__exact=", "?type="):
        assert filter_param in page


def test_replay_actions_need_the_replay_permission(client, staff, events):
    client.force_login(staff)
    page = client.get(CHANGELIST).content.decode()
    assert "replay_selected" not in page
    response = client.post(CHANGELIST, {"action": "replay_selected", "_selected_action": [events["dead"].pk]})
    assert WebhookEvent.objects.get(event_id="evt_dead").status == EventStatus.DEAD
    assert response.status_code in (200, 302)
    _grant_replay(staff)
    page = client.get(CHANGELIST).content.decode()
    for action in ("replay_selected", "force_replay_selected", "replay_dead_letters"):
        assert action in page


def test_admin_replay_action_records_the_user(client, staff, events):
    _grant_replay(staff)
    client.force_login(staff)
    response = client.post(CHANGELIST, {"action": "replay_selected",
                                        "_selected_action": [events["dead"].pk, events["processed"].pk]},
                           follow=True)
    page = response.content.decode()
    assert "Replayed 1 event(s)" in page and "Force replay" in page
    dead = WebhookEvent.objects.get(event_id="evt_dead")
    assert (dead.status, dead.replayed_by) == (EventStatus.RECEIVED, staff)
    assert WebhookEvent.objects.get(event_id="evt_processed").status == EventStatus.PROCESSED

    client.post(CHANGELIST, {"action": "force_replay_selected", "_selected_action": [events["processed"].pk]})
    assert WebhookEvent.objects.get(event_id="evt_processed").status == EventStatus.RECEIVED


def test_admin_bulk_replay_of_dead_letters(client, staff, provider):
    _grant_replay(staff)
    client.force_login(staff)
    dead = [stored_event(provider=provider, type_="x", status=EventStatus.DEAD) for _ in range(3)]
    done = stored_event(provider=provider, type_="x", status=EventStatus.PROCESSED)
    client.post(CHANGELIST, {"action": "replay_dead_letters", "select_across": "1", "index": "0",
                             "_selected_action": [e.pk for e in [*dead, done]]})
    assert WebhookEvent.objects.filter(status=EventStatus.RECEIVED).count() == 3
    assert WebhookEvent.objects.get(pk=done.pk).status == EventStatus.PROCESSED


def test_detail_shows_formatted_body_and_no_signature_and_the_subject_has_an_admin_url(client, staff, provider):
    from tests.support.webhook_signing import as_meta, body_of, charge_event, standard_headers

    ch = charge(provider=provider, provider_charge_id="pc_adm")
    body = body_of(charge_event(event_id="evt_adm", type_="charge.succeeded", charge_id="pc_adm"))
    headers = standard_headers(body=body, msg_id="evt_adm")
    client.post("/webhooks/sandbox/", data=body, content_type="application/json", **as_meta(headers))
    event = WebhookEvent.objects.get()
    webhook_process(event_pk=event.pk)
    client.force_login(staff)
    page = client.get(f"{CHANGELIST}{event.pk}/change/").content.decode()
    assert "&quot;amount&quot;: 1000,\n" in page  # indented JSON, one key per line
    event.refresh_from_db()
    assert event.subject_admin_url() == f"/admin/payments/charge/{ch.pk}/change/"
    assert f'href="/admin/payments/charge/{ch.pk}/change/"' in page and ch.pk in page
    assert headers["webhook-signature"].split(",")[1] not in page
    assert "whsec_" not in page


def test_subject_admin_url_is_none_without_a_subject_or_an_admin_page(provider):
    event = stored_event(provider=provider, type_="x")
    assert event.subject_admin_url() is None
    event.subject_type, event.subject_id = "payments.charge", "ch_1"
    assert event.subject_admin_url() == "/admin/payments/charge/ch_1/change/"
    event.subject_type = "nowhere.thing"
    assert event.subject_admin_url() is None
