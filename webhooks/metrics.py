"""Prometheus counters for webhook intake and processing (exposed by /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
