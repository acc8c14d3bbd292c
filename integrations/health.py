"""The providers' circuits in /health/ready.

Every enabled provider's circuit is reported. An open circuit alone keeps the service
ready: the breaker already fails those calls fast, other providers, reads and webhook intake
still work, and since circuit state is shared, pulling one instance out of the load balancer
would pull them all. Only when every enabled provider's circuit is open (nothing outbound
can work) is the service reported not ready, unless
INTEGRATIONS_NOT_READY_WHEN_ALL_CIRCUITS_OPEN is False.
"""

from __future__ import annotations

from datetime import UTC, datetime

from config.health import NotReady
from integrations.circuit import OPEN, circuit_statuses
from integrations.conf import integration_settings


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat() if ts else None


def providers_check() -> dict:
    """{slug: {state, failures, changed}} for each enabled provider; NotReady if all are open."""
    from integrations.models import Provider

    providers = list(Provider.objects.filter(enabled=True))
    statuses = circuit_statuses(providers=providers)
    detail = {slug: {"circuit": s.state, "consecutive_failures": s.failures, "changed": _iso(s.changed_at),
                     "total_failures": s.total_failures, "opened_times": s.total_opens}
              for slug, s in statuses.items()}
    all_open = bool(statuses) and all(s.state == OPEN for s in statuses.values())
    if all_open and integration_settings.NOT_READY_WHEN_ALL_CIRCUITS_OPEN:
        raise NotReady({"providers": detail, "reason": "every enabled provider's circuit is open"})
    return detail
