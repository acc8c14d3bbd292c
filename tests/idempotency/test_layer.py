"""The layer's services and decorator beyond the table: takeover, lock loss, purge, metrics,
function views, and the rule that every POST under /api/v1/ goes through it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from prometheus_client import REGISTRY
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate

from api.models import Consumer
from idempotency.decorators import idempotent
from idempotency.exceptions import IdempotencyKeyInUse
from idempotency.models import IdempotencyRecord, RecoveryPoint
from idempotency.services import (
    Execution,
    idempotency_claim,
    idempotency_finish,
    idempotency_purge_expired,
    request_fingerprint,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def consumer(db):
    return Consumer.objects.create(name="c")


def claim(consumer, key="k", fingerprint="f"):
    return idempotency_claim(consumer_id=consumer.pk, key=key, method="POST", path="/p", fingerprint=fingerprint)


def test_fingerprint_ignores_key_order_and_whitespace_but_not_values():
    a = request_fingerprint(method="post", path="/p", body={"a": 1, "b": {"c": [1, 2]}})
    assert a == request_fingerprint(method="POST", path="/p", body={"b": {"c": [1, 2]}, "a": 1})
    assert a != request_fingerprint(method="POST", path="/p", body={"a": 1, "b": {"c": [2, 1]}})
    assert a != request_fingerprint(method="POST", path="/q", body={"a": 1, "b": {"c": [1, 2]}})


def test_a_stale_lock_is_taken_over_and_the_old_holder_can_no_longer_write(consumer):
    first = claim(consumer)
    assert isinstance(first, Execution) and not first.resumed
    first.checkpoint("work_started", resource_id="res_1")
    with pytest.raises(IdempotencyKeyInUse):
        claim(consumer)
    with override_settings(IDEMPOTENCY_LOCK_TIMEOUT_SECONDS=0):
        second = claim(consumer)
    assert second.resumed and second.recovery_point == "work_started" and second.resource_id == "res_1"
    # The original holder wakes up: it can neither checkpoint nor store its answer.
    from idempotency.exceptions import IdempotencyLockLost

    with pytest.raises(IdempotencyLockLost):
        first.checkpoint("late")
    assert idempotency_finish(execution=first, status=201, body="{}") is False
    assert idempotency_finish(execution=second, status=201, body='{"ok": true}') is True
    record = IdempotencyRecord.objects.get()
    assert record.response_body == '{"ok": true}' and record.recovery_point == RecoveryPoint.FINISHED


def test_purge_deletes_only_expired_records_in_batches(consumer):
    for i in range(5):
        claim(consumer, key=f"old{i}")
    claim(consumer, key="new")
    IdempotencyRecord.objects.exclude(key="new").update(created=timezone.now() - timedelta(days=2))
    assert idempotency_purge_expired(batch_size=2, max_batches=1) == 2
    assert idempotency_purge_expired(batch_size=2) == 3
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def _metric(name, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_replays_and_conflicts_are_counted(post_charge):
    replays = _metric("idempotent_replays_total", status="201")
    reused = _metric("idempotency_conflicts_total", type="reused")
    post_charge(key="m")
    post_charge(key="m")
    post_charge({"amount": 1}, key="m")
    assert _metric("idempotent_replays_total", status="201") == replays + 1
    assert _metric("idempotency_conflicts_total", type="reused") == reused + 1


def test_function_views_can_be_idempotent(consumer):
    calls = []

    @api_view(["POST"])
    @idempotent
    def view(request):
        calls.append(1)
        return Response({"n": len(calls)}, status=201)

    factory = APIRequestFactory()

    def send():
        request = factory.post("/api/v1/things", {"x": 1}, format="json", HTTP_IDEMPOTENCY_KEY="fv")
        force_authenticate(request, user=consumer)
        response = view(request)
        if hasattr(response, "render"):  # a replay is an already rendered HttpResponse
            response.render()
        return response

    first, second = send(), send()
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true" and second.content == first.content
    assert calls == [1]


def _api_v1_views():
    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.callback

    return [(route, cb) for route, cb in walk(get_resolver().url_patterns, "") if route.startswith("api/v1/")]


def test_every_post_under_api_v1_goes_through_the_layer():
    views = _api_v1_views()
    assert any(route == "api/v1/charges" for route, _ in views)
    for route, callback in views:
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        post = getattr(view_class, "post", None)
        if post is None:
            continue
        inner = getattr(callback, "cls", None) and getattr(post, "__wrapped__", None)
        assert getattr(post, "idempotent", False) or getattr(inner, "idempotent", False), (
            f"POST {route} must be decorated with idempotency.decorators.idempotent")
