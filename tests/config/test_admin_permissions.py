"""Admin actions: each needs a permission, and each leaves a history entry on what it touched.

The first test walks every registered ModelAdmin, so an action added later without a
permission fails here without anyone having to remember to write a test for it.
"""

from __future__ import annotations

import itertools
import re
import uuid

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Failure, OrmQ, Schedule, Success, Task
from django_q.signing import SignedPackage

from api.models import ApiKey, Consumer, api_key_create
from idempotency.models import IdempotencyRecord
from imports.models import ImportJob
from integrations.circuit import CLOSED, FAILURE, OPEN, Permit, circuit_record, circuit_status
from integrations.models import OutboundCall, Provider
from payments.models import Refund
from tests.webhooks.factories import charge, stored_event
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db

_n = itertools.count(1)


def staff_with(*perms: str) -> User:
    """A staff user holding exactly `perms` ("app_label.codename")."""
    user = User.objects.create_user(f"staff{next(_n)}", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)  # no cached permissions


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def run_action(client, model, action: str, *objects, **extra):
    return client.post(changelist(model), {"action": action, "index": "0",
                                           "_selected_action": [obj.pk for obj in objects]}, **extra)


def history(obj):
    """The entries the object's admin history page lists."""
    content_type = ContentType.objects.get_for_model(obj, for_concrete_model=False)
    return LogEntry.objects.filter(content_type=content_type, object_id=str(obj.pk))


def open_circuit(provider: Provider) -> None:
    for _ in range(provider.circuit_failure_threshold):
        circuit_record(provider=provider, permit=Permit(), outcome=FAILURE, error="HTTP_500")
    assert circuit_status(provider=provider).state == OPEN


@pytest.fixture
def broker():
    """The configured task queue, emptied before and after (resubmitting pushes to it)."""
    queue = get_broker()
    queue.purge_queue()
    yield queue
    queue.purge_queue()


@pytest.fixture
def rows(provider, broker):
    """A row of every model the admin shows, each in a state some action would change."""
    open_circuit(provider)
    key, _ = api_key_create(consumer_name="shop")
    paid = charge(provider=provider, provider_charge_id="pc_admin")
    Refund.objects.create(charge=paid, amount=100, outbound_idempotency_key="refund-admin")
    IdempotencyRecord.objects.create(consumer=key.consumer, key="idem-admin", method="POST", path="/v1/charges",
                                     fingerprint="0" * 64)
    OutboundCall.objects.create(provider=provider, method="GET", path="/x", ok=False, status=500, attempts=1,
                                latency_ms=1.0)
    stored_event(provider=provider, type_="charge.succeeded", status=EventStatus.DEAD)
    now = timezone.now()
    for success in (True, False):
        Task.objects.create(id=uuid.uuid4().hex, name=f"task-{success}", func="webhooks.tasks.sweep",
                            started=now, stopped=now, success=success)
    Schedule.objects.create(name="admin-test", func="webhooks.tasks.sweep")
    OrmQ.objects.create(key="admin-test", lock=now, payload=SignedPackage.dumps(
        {"id": uuid.uuid4().hex, "name": "queued", "func": "webhooks.tasks.sweep", "args": (), "kwargs": {}}))
    Group.objects.create(name="support")
    ImportJob.objects.create(provider=provider)  # start again / resume / cancel
    if apps.is_installed("axes"):  # admin login lockouts
        apps.get_model("axes", "AccessAttempt").objects.create(
            username="someone", ip_address="192.0.2.1", user_agent="test", http_accept="*/*", path_info="/admin/login/",
            get_data="", post_data="", failures_since_start=1)


def snapshot(broker) -> dict:
    """Everything an action could change: the rows of every admin model, circuits, queue, log."""
    state = {model._meta.label: list(model._base_manager.order_by("pk").values()) for model in admin.site._registry}
    state["circuits"] = {p.slug: circuit_status(provider=p) for p in Provider.objects.all()}
    state["queue"] = broker.queue_size()
    state["log"] = list(LogEntry.objects.values())
    return state


def test_a_staff_member_who_may_only_view_can_run_no_admin_action(client, rows, broker):
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(viewer)
    client.raise_request_exception = False  # a crashing action is one more problem to list
    request = RequestFactory().get("/admin/")
    request.user = viewer
    problems = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label
        actions = model_admin._get_base_actions()  # declared ones, before the permission filter
        for func, name, _ in actions:
            if not getattr(func, "allowed_permissions", None):
                problems.append(f"{label}: action {name} declares no permission")
        if offered := sorted(model_admin.get_actions(request)):
            problems.append(f"{label}: offers {offered} to a viewer")
        target = model._default_manager.order_by("pk").first()
        if target is None:
            if model_admin.actions:
                problems.append(f"{label}: add a row to the `rows` fixture so its actions are tried")
            continue
        for _, name, _ in actions:
            before = snapshot(broker)
            response = run_action(client, model, name, target)
            if response.status_code not in (200, 302):
                problems.append(f"{label}: action {name} answered {response.status_code}")
            if snapshot(broker) != before:
                problems.append(f"{label}: action {name} changed data for a viewer")
    assert problems == [], "\n".join(problems)


def test_an_api_key_takes_add_apikey_and_its_history_entry_names_only_the_prefix(client):
    consumer = Consumer.objects.create(name="shop")
    editor = staff_with("api.view_consumer", "api.change_consumer")
    client.force_login(editor)
    run_action(client, Consumer, "create_key", consumer)
    assert not ApiKey.objects.exists()  # editing the consumer is not enough to act as it

    user = staff_with("api.view_consumer", "api.add_apikey")
    client.force_login(user)
    response = run_action(client, Consumer, "create_key", consumer, follow=True)

    key = ApiKey.objects.get()
    raw = re.search(r"pgw_\S+", " ".join(str(m) for m in response.context["messages"])).group()
    assert raw.startswith(key.prefix) and len(raw) > len(key.prefix)
    entry = history(consumer).get()
    assert (entry.user, entry.action_flag, entry.object_repr) == (user, CHANGE, "shop")
    assert entry.change_message == f"Created API key {key.prefix}… (label admin:{user.username})"
    assert not any(raw in str(value) for row in LogEntry.objects.values() for value in row.values())
    page = client.get(reverse("admin:api_consumer_history", args=[consumer.pk])).content.decode()
    assert f"Created API key {key.prefix}" in page and raw not in page


def test_revoking_keys_takes_change_apikey_and_logs_each_key_it_revoked(client):
    active, other = (api_key_create(consumer_name="shop")[0] for _ in range(2))
    earlier = api_key_create(consumer_name="shop")[0]
    earlier.revoke()
    revoked_at = ApiKey.objects.get(pk=earlier.pk).revoked_at
    user = staff_with("api.view_apikey", "api.change_apikey")
    client.force_login(user)

    run_action(client, ApiKey, "revoke", active, other, earlier)

    assert not ApiKey.objects.active().exists()
    assert ApiKey.objects.get(pk=earlier.pk).revoked_at == revoked_at
    for key in (active, other):
        entry = history(key).get()
        assert (entry.user, entry.change_message) == (user, "Revoked API key")
        assert key.prefix in entry.object_repr
    assert not history(earlier).exists()


def test_resetting_a_circuit_takes_change_provider_and_logs_the_state_it_left(client, provider):
    open_circuit(provider)
    user = staff_with("integrations.view_provider", "integrations.change_provider")
    client.force_login(user)

    run_action(client, Provider, "reset_circuits", provider)

    assert circuit_status(provider=provider).state == CLOSED
    entry = history(provider).get()
    assert (entry.user, entry.change_message) == (user, "Reset the circuit breaker (was open)")


def test_replaying_logs_one_entry_per_event_replayed(client, provider, django_capture_on_commit_callbacks):
    dead = stored_event(provider=provider, type_="x", status=EventStatus.DEAD)
    done = stored_event(provider=provider, type_="x", status=EventStatus.PROCESSED)
    user = staff_with("webhooks.view_webhookevent", "webhooks.replay_webhookevent")
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=False):
        run_action(client, WebhookEvent, "replay_selected", dead, done)
    assert [(e.user, e.change_message) for e in history(dead)] == [(user, "Replayed the event (was dead)")]
    assert not history(done).exists()  # skipped: processed events need a forced replay

    with django_capture_on_commit_callbacks(execute=False):
        run_action(client, WebhookEvent, "force_replay_selected", done)
    assert history(done).get().change_message == "Force replayed the event (was processed)"


def test_resubmitting_a_failed_task_takes_change_and_delete_and_is_logged(client, broker):
    now = timezone.now()
    failed = Task.objects.create(id=uuid.uuid4().hex, name="failed", func="webhooks.tasks.sweep",
                                 started=now, stopped=now, success=False)
    failure = Failure.objects.get(pk=failed.pk)
    client.force_login(staff_with("django_q.view_failure", "django_q.change_failure"))
    run_action(client, Failure, "resubmit_task", failure)
    assert Failure.objects.filter(pk=failure.pk).exists() and broker.queue_size() == 0

    user = staff_with("django_q.view_failure", "django_q.change_failure", "django_q.delete_failure")
    client.force_login(user)
    run_action(client, Failure, "resubmit_task", failure)

    assert not Failure.objects.filter(pk=failure.pk).exists()  # resubmitting replaces the failure
    assert broker.queue_size() == 1
    entry = history(failure).get()
    assert (entry.user, entry.change_message) == (user, "Resubmitted the task to the queue")


def test_resubmitting_a_successful_task_takes_change(client, broker):
    now = timezone.now()
    done = Task.objects.create(id=uuid.uuid4().hex, name="done", func="webhooks.tasks.sweep",
                               started=now, stopped=now, success=True)
    success = Success.objects.get(pk=done.pk)
    user = staff_with("django_q.view_success", "django_q.change_success")
    client.force_login(user)

    run_action(client, Success, "resubmit_task", success)

    assert broker.queue_size() == 1
    assert history(success).get().user == user
