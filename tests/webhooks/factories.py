"""Rows for webhook tests: events stored as intake stores them, charges to update."""

from __future__ import annotations

import itertools
import json

from api.models import Consumer
from integrations.models import Provider
from payments.models import Charge
from webhooks.models import WebhookEvent

_n = itertools.count(1)


def stored_event(*, provider: Provider, type_: str, payload: dict | None = None, event_id: str | None = None,
                 **fields) -> WebhookEvent:
    event_id = event_id or f"evt_{next(_n)}"
    payload = payload if payload is not None else {"id": event_id, "type": type_}
    return WebhookEvent.objects.create(provider=provider, event_id=event_id, type=type_,
                                       raw_body=json.dumps(payload).encode(), payload=payload, **fields)


def charge(*, provider: Provider, provider_charge_id: str, amount: int = 1000, **fields) -> Charge:
    consumer, _ = Consumer.objects.get_or_create(name="shop")
    return Charge.objects.create(consumer=consumer, provider=provider, amount=amount, currency="usd",
                                 source="tok_visa", provider_charge_id=provider_charge_id,
                                 outbound_idempotency_key=f"test-{next(_n)}", **fields)
