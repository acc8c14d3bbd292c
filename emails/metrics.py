"""Prometheus metrics of sending (labels: provider slug and outcome only, never an address)."""

from prometheus_client import Counter

sends_total = Counter("email_sends_total", "Email send attempts by provider and outcome.", ["provider", "outcome"])
events_total = Counter("email_events_total", "Email provider events by provider and type.", ["provider", "type"])
