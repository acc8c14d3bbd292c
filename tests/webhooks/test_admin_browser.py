"""Staff replay a dead letter from the admin in a real browser (Playwright + Chromium)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connections

from payments.models import Charge, ChargeStatus
from tests.support.webhook_signing import charge_event
from tests.webhooks.factories import charge, stored_event
from webhooks.models import EventStatus, WebhookEvent

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between page actions are ordinary blocking calls, which is what Django guards against.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()
            # ORM calls made while Playwright's loop runs get their own connection (Django
            # keys connections by context there); close it or it outlives the test database.
            connections.close_all()


def test_staff_filters_dead_events_replays_one_and_sees_it_processed(live_server, browser_page, provider,
                                                                     task_queue):
    staff = User.objects.create_user("ops", password="ops-password-123", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_webhookevent",
                                                                        "replay_webhookevent"]))
    ch = charge(provider=provider, provider_charge_id="pc_browser")
    payload = charge_event(event_id="evt_dead_letter", type_="charge.succeeded", charge_id="pc_browser")
    dead = stored_event(provider=provider, type_=payload["type"], payload=payload, event_id=payload["id"],
                        status=EventStatus.DEAD, attempts=5, last_error="HandlerRetry: no charge yet")
    stored_event(provider=provider, type_="charge.succeeded", event_id="evt_other_done",
                 status=EventStatus.PROCESSED)

    page = browser_page
    page.goto(f"{live_server.url}/admin/login/?next=/admin/webhooks/webhookevent/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "ops-password-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#changelist")

    # Filter to dead letters with the sidebar filter, as a person would.
    page.click("#changelist-filter a[href*='status__exact=dead']")
    page.wait_for_url("**status__exact=dead**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "evt_dead_letter" in rows.first.inner_text()

    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "replay_selected")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "Replayed 1 event(s)" in page.inner_text(".messagelist")
    assert WebhookEvent.objects.get(pk=dead.pk).status == EventStatus.RECEIVED

    # The relay and worker steps: hand the replayed row on, run it as a qcluster worker would.
    assert task_queue.relay() == [dead.pk]
    assert task_queue.run_all() == [EventStatus.PROCESSED]

    page.goto(f"{live_server.url}/admin/webhooks/webhookevent/?status__exact=processed")
    assert "evt_dead_letter" in page.inner_text("#result_list")
    page.click("#result_list a:has-text('evt_dead_letter')")
    detail = page.inner_text("#content")
    assert "ops" in detail and ch.pk in detail  # who replayed, and the linked charge
    assert Charge.objects.get(pk=ch.pk).status == ChargeStatus.SUCCEEDED
