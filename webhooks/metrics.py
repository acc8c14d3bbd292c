"""Prometheus counters for webhook intake and processing (exposed by /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

# `provider` is the slug of a known provider, or "unknown": never the raw URL segment,
# which a caller could vary without bound.
intake_total = Counter(
    "webhook_intake_total",
    "Webhook deliveries by provider and outcome (accepted, duplicate, or the refusal type).",
    ["provider", "outcome"],
)
processing_total = Counter(
    "webhook_processing_total",
    "Webhook processing attempts by provider and outcome (processed, ignored, failed, dead).",
    ["provider", "outcome"],
)
processing_seconds = Histogram(
    "webhook_processing_seconds",
    "Time a handler took, by provider.",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class BacklogCollector:
    """`webhook_events_open{provider,status}`: events not yet done (received, processing,
    failed, dead), counted in the database at scrape time. Alert on dead > 0 or a growing
    backlog; it is right whichever host's worker did (or failed to do) the processing."""

    OPEN_STATUSES = ("received", "processing", "failed", "dead")

    def collect(self):
        from django.db.models import Count

        from webhooks.models import WebhookEvent

        family = GaugeMetricFamily("webhook_events_open", "Webhook events not yet processed, by status.",
                                   labels=["provider", "status"])
        rows = (WebhookEvent.objects.filter(status__in=self.OPEN_STATUSES)
                .values_list("provider__slug", "status").annotate(n=Count("id")).order_by())
        for slug, status, count in rows:
            family.add_metric([slug, status], count)
        yield family


backlog = BacklogCollector()
