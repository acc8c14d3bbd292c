"""Liveness and readiness: /health/live says the process is up, /health/ready that it can work.

Apps add readiness checks with `@readiness_check("name")`; each returns a JSON-able
detail and raises `NotReady` (or any error) when the service should not take traffic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from config.errors import get_only

logger = logging.getLogger(__name__)

_checks: dict[str, Callable[[], object]] = {}


class NotReady(Exception):
    """Raised by a check with the detail to report; the service answers 503."""

    def __init__(self, detail: object):
        super().__init__(str(detail))
        self.detail = detail


def readiness_check(name: str):
    def register(func: Callable[[], object]) -> Callable[[], object]:
        _checks[name] = func
        return func

    return register


@readiness_check("database")
def _database() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


@readiness_check("broker")
def _broker() -> str:
    from django_q.brokers import get_broker

    broker = get_broker()
    if not broker.ping():
        raise NotReady(f"{type(broker).__name__} did not answer")
    return "ok"


@never_cache
@get_only
def live(request):
    return JsonResponse({"status": "ok"})


@never_cache
@get_only
def ready(request):
    results: dict[str, object] = {}
    failed: list[str] = []
    for name, check in _checks.items():
        try:
            results[name] = check()
        except NotReady as err:
            failed.append(name)
            results[name] = {"status": "failing", "detail": err.detail}
        except Exception as err:  # noqa: BLE001 - any failure means "not ready", reported by name
            failed.append(name)
            # The class name only: messages of connection errors can carry DSNs.
            results[name] = {"status": "failing", "detail": type(err).__name__}
            logger.warning("readiness check failed", extra={"check": name, "error": type(err).__name__})
    body = {"status": "ok" if not failed else "unavailable", "failed": failed, "checks": results}
    return JsonResponse(body, status=503 if failed else 200)
