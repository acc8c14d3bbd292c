"""Charge events: the matching charge moves forward only, whatever the order or repeats."""

from __future__ import annotations

import itertools

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.models import Provider
from payments.models import Charge, ChargeStatus, ChargeStatusChange
from tests.support.webhook_signing import charge_event
from tests.webhooks.factories import charge, stored_event
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_process
from webhooks.replay import webhook_replay

_n = itertools.count(1)


def deliver(provider, payload) -> WebhookEvent:
    event = stored_event(provider=provider, type_=payload["type"], payload=payload, event_id=payload["id"])
    webhook_process(event_pk=event.pk)
    event.refresh_from_db()
    return event


@pytest.fixture
def stripe_provider(db) -> Provider:
    return Provider.objects.create(slug="stripe", name="Stripe", kind="stripe", base_url="https://api.stripe.com")


@pytest.mark.parametrize("kind", ["sandbox", "stripe"])
def test_charge_succeeded_marks_the_charge_succeeded_and_links_it(kind, provider, stripe_provider):
    p = provider if kind == "sandbox" else stripe_provider
    ch = charge(provider=p, provider_charge_id="pc_1")
    event = deliver(p, charge_event(event_id="evt_1", type_="charge.succeeded", charge_id="pc_1"))
    assert (event.status, event.subject_type, event.subject_id) == (EventStatus.PROCESSED, "payments.charge", ch.pk)
    ch.refresh_from_db()
    assert ch.status == ChargeStatus.SUCCEEDED
    assert ch.history.get().source == "webhook:evt_1"


def test_charge_failed_records_the_failure(provider):
    ch = charge(provider=provider, provider_charge_id="pc_f")
    deliver(provider, charge_event(event_id="evt_f", type_="charge.failed", charge_id="pc_f",
                                   failure_code="card_declined"))
    ch.refresh_from_db()
    assert (ch.status, ch.failure_code, ch.failure_message) == (
        ChargeStatus.FAILED, "card_declined", "Your card was declined.")


def test_partial_then_full_refund(provider):
    ch = charge(provider=provider, provider_charge_id="pc_r", amount=1000, status=ChargeStatus.SUCCEEDED)
    deliver(provider, charge_event(event_id="evt_r1", type_="charge.refunded", charge_id="pc_r",
                                   amount_refunded=300))
    ch.refresh_from_db()
    assert (ch.status, ch.amount_refunded) == (ChargeStatus.PARTIALLY_REFUNDED, 300)
    deliver(provider, charge_event(event_id="evt_r2", type_="charge.refunded", charge_id="pc_r",
                                   amount_refunded=1000))
    ch.refresh_from_db()
    assert (ch.status, ch.amount_refunded) == (ChargeStatus.REFUNDED, 1000)


def test_late_succeeded_after_refunded_changes_nothing(provider):
    ch = charge(provider=provider, provider_charge_id="pc_l")
    deliver(provider, charge_event(event_id="evt_l2", type_="charge.refunded", charge_id="pc_l",
                                   amount_refunded=1000))
    event = deliver(provider, charge_event(event_id="evt_l1", type_="charge.succeeded", charge_id="pc_l"))
    assert event.status == EventStatus.PROCESSED
    ch.refresh_from_db()
    assert (ch.status, ch.amount_refunded) == (ChargeStatus.REFUNDED, 1000)


def test_event_for_an_unknown_charge_is_retried_then_processed_once_the_charge_exists(provider):
    event = deliver(provider, charge_event(event_id="evt_u", type_="charge.succeeded", charge_id="pc_later"))
    assert event.status == EventStatus.FAILED
    assert "pc_later" in event.last_error and event.next_attempt_at is not None
    ch = charge(provider=provider, provider_charge_id="pc_later")
    assert webhook_process(event_pk=event.pk, now=event.next_attempt_at) == EventStatus.PROCESSED
    assert Charge.objects.get(pk=ch.pk).status == ChargeStatus.SUCCEEDED


def test_event_for_a_charge_that_never_appears_is_dead_lettered(provider):
    event = deliver(provider, charge_event(event_id="evt_n", type_="charge.succeeded", charge_id="pc_never"))
    while event.status == EventStatus.FAILED:
        webhook_process(event_pk=event.pk, now=event.next_attempt_at)
        event.refresh_from_db()
    assert (event.status, event.attempts) == (EventStatus.DEAD, 5)
    assert "HandlerRetry" in event.last_error


def test_a_charge_of_another_provider_with_the_same_id_is_not_touched(provider, stripe_provider):
    other = charge(provider=stripe_provider, provider_charge_id="pc_same")
    event = deliver(provider, charge_event(event_id="evt_o", type_="charge.succeeded", charge_id="pc_same"))
    assert event.status == EventStatus.FAILED
    assert Charge.objects.get(pk=other.pk).status == ChargeStatus.PENDING


def test_event_without_a_charge_object_fails_with_a_clear_error(provider):
    event = deliver(provider, {"id": "evt_bad", "type": "charge.succeeded", "data": {}})
    assert event.status == EventStatus.FAILED
    assert event.last_error == "ValueError: the event has no data.object.id (charge id)"


def test_forced_replay_of_processed_events_changes_no_charge(provider):
    ch = charge(provider=provider, provider_charge_id="pc_rep", status=ChargeStatus.SUCCEEDED)
    deliver(provider, charge_event(event_id="evt_rep1", type_="charge.refunded", charge_id="pc_rep",
                                   amount_refunded=400))
    deliver(provider, charge_event(event_id="evt_rep2", type_="charge.succeeded", charge_id="pc_rep"))
    ch.refresh_from_db()
    snapshot = (ch.status, ch.amount_refunded, ch.updated, ChargeStatusChange.objects.count())

    outcome = webhook_replay(events=WebhookEvent.objects.all(), force=True)
    assert len(outcome.enqueued) == 2
    for event in WebhookEvent.objects.all():
        assert webhook_process(event_pk=event.pk) == EventStatus.PROCESSED
    ch.refresh_from_db()
    assert (ch.status, ch.amount_refunded, ch.updated, ChargeStatusChange.objects.count()) == snapshot
    assert snapshot[:2] == (ChargeStatus.PARTIALLY_REFUNDED, 400)


# --- property: any order and duplication of a charge's events ends in the right state --

def _history(outcome: str, refunds: list[int], amount: int) -> list[dict]:
    """A consistent provider history: success then growing refunds, or a failure."""
    if outcome == "failed":
        return [charge_event(event_id="e0", type_="charge.failed", charge_id="", failure_code="card_declined")]
    events = [charge_event(event_id="e0", type_="charge.succeeded", charge_id="", amount=amount)]
    total = 0
    for i, part in enumerate(refunds, 1):
        total = min(amount, total + part)
        events.append(charge_event(event_id=f"e{i}", type_="charge.refunded", charge_id="", amount=amount,
                                   amount_refunded=total))
    return events


@st.composite
def deliveries(draw):
    amount = draw(st.integers(min_value=1, max_value=10_000))
    outcome = draw(st.sampled_from(["succeeded", "failed"]))
    refunds = draw(st.lists(st.integers(min_value=1, max_value=10_000), max_size=4)) if outcome == "succeeded" else []
    history = _history(outcome, refunds, amount)
    # Every event at least once, some several times, in any order.
    order = draw(st.lists(st.sampled_from(range(len(history))), max_size=8))
    order = draw(st.permutations(list(range(len(history))) + order))
    return amount, history, order


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=deliveries())
def test_any_order_and_duplication_ends_in_the_right_final_state(provider, case):
    amount, history, order = case
    run = next(_n)
    pc_id = f"pc_prop_{run}"
    ch = charge(provider=provider, provider_charge_id=pc_id, amount=amount)
    for index in order:
        payload = history[index]
        payload = {**payload, "id": f"{payload['id']}_{run}",
                   "data": {"object": {**payload["data"]["object"], "id": pc_id}}}
        event = WebhookEvent.objects.filter(provider=provider, event_id=payload["id"]).first()
        if event is None:
            event = stored_event(provider=provider, type_=payload["type"], payload=payload, event_id=payload["id"])
        else:  # a duplicate delivery the handler sees again (as a replay would)
            WebhookEvent.objects.filter(pk=event.pk).update(status=EventStatus.RECEIVED, attempts=0)
        assert webhook_process(event_pk=event.pk, now=timezone.now()) == EventStatus.PROCESSED

    final = history[-1]["data"]["object"]
    ch.refresh_from_db()
    if history[-1]["type"] == "charge.failed":
        expected = (ChargeStatus.FAILED, 0)
    elif final["amount_refunded"] == 0:
        expected = (ChargeStatus.SUCCEEDED, 0)
    elif final["amount_refunded"] >= amount:
        expected = (ChargeStatus.REFUNDED, amount)
    else:
        expected = (ChargeStatus.PARTIALLY_REFUNDED, final["amount_refunded"])
    assert (ch.status, ch.amount_refunded) == expected
    # History only ever moved forward.
    ranks = {"pending": 0, "failed": 1, "succeeded": 1, "partially_refunded": 2, "refunded": 3}
    steps = [ranks[c.to_status] for c in ch.history.all()]
    assert steps == sorted(steps)


def test_handlers_are_found_by_the_kinds_capability_not_its_name(provider):
    """A kind gets the payments handlers by having the "payments" capability; a kind
    without it (a generic Standard Webhooks sender) has its charge events ignored."""
    from integrations.kinds import get_kind
    from payments.handlers import charge_event as handler
    from webhooks.registry import handler_for

    assert "payments" in get_kind("sandbox").capabilities and "payments" not in get_kind("standard").capabilities
    assert handler_for("sandbox", "charge.succeeded") is handler
    assert handler_for("stripe", "charge.refunded") is handler
    assert handler_for("standard", "charge.succeeded") is None
    assert handler_for("no-such-kind", "charge.succeeded") is None

    standard = Provider.objects.create(slug="std", name="Std", kind="standard", base_url="http://127.0.0.1:9")
    charge(provider=standard, provider_charge_id="pc_std")
    event = deliver(standard, charge_event(event_id="evt_std", type_="charge.succeeded", charge_id="pc_std"))
    assert (event.status, event.subject_id) == (EventStatus.IGNORED, "")


def test_a_capability_registered_for_a_block_reaches_every_kind_with_it(provider, stripe_provider):
    from webhooks.registry import registered

    seen = []
    with registered("payments", "payout.paid", lambda event: seen.append(event.kind)):
        for p in (provider, stripe_provider):
            assert deliver(p, {"id": f"evt_{p.kind}", "type": "payout.paid"}).status == EventStatus.PROCESSED
    assert seen == ["sandbox", "stripe"]
    # Gone after the block: the next such event is ignored.
    assert deliver(provider, {"id": "evt_after", "type": "payout.paid"}).status == EventStatus.IGNORED
