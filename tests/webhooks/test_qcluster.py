"""The real path: a delivered event goes from its row, through `manage.py webhook_relay`,
to a `manage.py qcluster` worker; with no relay running, the sweeper gets it there."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from django.utils import timezone

from payments.models import Charge, ChargeStatus
from tests.support import processes
from tests.support.databases import database_url
from tests.support.webhook_signing import as_meta, body_of, charge_event, standard_headers
from tests.webhooks.factories import charge
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_sweep

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def start(tmp_path) -> Iterator:
    """Start `manage.py <command>` against the test database; stopped their way at the end."""
    env = {"DATABASE_URL": database_url(), "Q_WORKERS": "2"}
    with processes.Processes(tmp_path) as procs:
        def run(name: str, *args: str, stop_signal: int = signal.SIGINT) -> processes.Process:
            # SIGINT to qcluster's main process only: a group SIGTERM can hang it.
            return procs.add(processes.start(name, processes.manage(*args), env=env, stop_signal=stop_signal,
                                             log_dir=tmp_path))

        yield run


def _deliver(client, event_id: str, charge_id: str) -> None:
    body = body_of(charge_event(event_id=event_id, type_="charge.succeeded", charge_id=charge_id))
    response = client.post("/webhooks/sandbox/", data=body, content_type="application/json",
                           **as_meta(standard_headers(body=body, msg_id=event_id)))
    assert response.json() == {"received": True, "duplicate": False}


def _all_processed(count: int):
    return lambda: WebhookEvent.objects.filter(status=EventStatus.PROCESSED).count() == count


def test_delivered_events_are_relayed_and_processed_by_the_cluster(provider, client, task_queue, start):
    charges = [charge(provider=provider, provider_charge_id=f"pc_q{i}") for i in range(5)]
    cluster = start("qcluster", "qcluster")
    relay = start("relay", "webhook_relay", stop_signal=signal.SIGTERM)
    for i in range(5):
        _deliver(client, f"evt_q{i}", f"pc_q{i}")
    processes.wait_until(_all_processed(5), timeout=60, interval=0.05, what="5 events processed",
                         process=cluster)
    assert relay.alive()
    assert set(Charge.objects.values_list("status", flat=True)) == {ChargeStatus.SUCCEEDED}
    assert {e.subject_id for e in WebhookEvent.objects.all()} == {c.pk for c in charges}
    assert set(WebhookEvent.objects.values_list("attempts", flat=True)) == {1}
    assert relay.stop(timeout=20) == 0 and cluster.stop(timeout=30) == 0


def test_with_no_relay_running_the_sweeper_gets_events_to_the_cluster(provider, client, task_queue, start):
    charge(provider=provider, provider_charge_id="pc_swept")
    _deliver(client, "evt_swept", "pc_swept")
    cluster = start("qcluster", "qcluster")
    event = WebhookEvent.objects.get()
    assert event.enqueued_at is None
    # The scheduled sweep, a minute later (its clock is injected rather than waited for).
    assert webhook_sweep(now=timezone.now() + timezone.timedelta(seconds=61)) == [event.pk]
    processes.wait_until(_all_processed(1), timeout=60, interval=0.05, what="the swept event processed",
                         process=cluster)
    assert Charge.objects.get().status == ChargeStatus.SUCCEEDED
