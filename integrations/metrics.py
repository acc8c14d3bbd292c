"""Prometheus metrics of the outbound client, and the GET /metrics view for the whole service.

With several gunicorn workers each process counts on its own; set PROMETHEUS_MULTIPROC_DIR
to an empty directory (before the processes start) and /metrics adds up every process's
files (prometheus-client's multiprocess mode). Without it, the process's own registry.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from config import env
from config.errors import get_only

logger = logging.getLogger(__name__)

# `provider` is always a provider slug (bounded); `outcome` is "ok" or a contract error code.
requests_total = Counter(
    "outbound_requests_total", "Outbound calls by provider and outcome.", ["provider", "outcome"])
request_seconds = Histogram(
    "outbound_request_duration_seconds", "Outbound call duration (all attempts and waits).",
    ["provider", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
)
attempts_total = Counter(
    "outbound_attempts_total", "Outbound HTTP attempts by provider and outcome.", ["provider", "outcome"])
retries_total = Counter("outbound_retries_total", "Attempts retried after a transient failure.", ["provider"])
rate_limit_wait_seconds = Counter(
    "outbound_rate_limit_wait_seconds_total", "Seconds spent waiting for a client-side rate-limit token.",
    ["provider"])
rate_limited_total = Counter(
    "outbound_rate_limited_total", "Calls ended RATE_LIMITED (no token in time, or Retry-After past the deadline).",
    ["provider"])
circuit_state = Gauge(
    "outbound_circuit_state", "Circuit state: 0 closed, 1 half-open, 2 open.", ["provider"],
    multiprocess_mode="mostrecent")
circuit_transitions_total = Counter(
    "outbound_circuit_transitions_total", "Circuit state changes by provider and new state.", ["provider", "state"])
cache_total = Counter(
    "outbound_cache_total", "Read-through cache lookups by provider and result (hit/miss).", ["provider", "result"])


def _refresh_circuit_gauges() -> None:
    """Set the circuit gauge from the shared state at scrape time: the truth across processes."""
    from integrations.circuit import circuit_statuses
    from integrations.models import Provider

    providers = Provider.objects.filter(enabled=True)
    for slug, status in circuit_statuses(providers=providers).items():
        circuit_state.labels(slug).set(status.numeric)


# Collectors that read the database at scrape time (e.g. the webhook backlog): the truth
# across every host, whichever process did the work. Apps add theirs from ready().
_scrape_collectors: list = []


def register_scrape_collector(collector) -> None:
    """Add a prometheus-client collector (an object with collect()) run on every scrape."""
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)


def _scrape_time_metrics() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    for collector in _scrape_collectors:
        registry.register(collector)
    try:
        return generate_latest(registry)
    except Exception:  # noqa: BLE001 - a scrape still answers with what it has
        logger.warning("a scrape-time metrics collector failed", exc_info=True)
        return b""


@never_cache
@get_only
def metrics_view(request):
    """Prometheus text exposition of every metric of the service."""
    try:
        _refresh_circuit_gauges()
    except Exception:  # noqa: BLE001 - a scrape still answers with what it has
        logger.warning("could not read circuit states for /metrics", exc_info=True)
    if env.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry) + _scrape_time_metrics(), content_type=CONTENT_TYPE_LATEST)
