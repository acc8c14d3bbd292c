"""Prometheus metrics of the idempotency layer (default registry, exported at /metrics)."""

from prometheus_client import Counter

REPLAYS = Counter(
    "idempotent_replays_total",
    "Requests answered from a stored idempotency record.",
    ["status"],
)
CONFLICTS = Counter(
    "idempotency_conflicts_total",
    "Requests refused because their key was in use (409) or reused with another request (422).",
    ["type"],
)
RESUMES = Counter(
    "idempotency_resumes_total",
    "Requests that took over an unfinished record (after a 503 or a stale lock) and resumed it.",
)
