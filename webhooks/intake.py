"""Intake: verify a delivery on its raw bytes, then store each event once and enqueue it."""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from integrations.credentials import credential_values_valid
from integrations.models import Provider
from webhooks import metrics, verify_cache
from webhooks.errors import IntakeError, InvalidSignature, ProviderNotFound
from webhooks.models import WebhookEvent
from webhooks.queue import enqueue_on_commit
from webhooks.schemes import Headers, scheme_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeResult:
    """What one delivery produced: new event row ids and how many were already stored."""

    stored: list[int]
    duplicates: int

    @property
    def duplicate(self) -> bool:
        """The contract's `duplicate`: true when the delivery brought nothing new."""
        return not self.stored and self.duplicates > 0


def provider_for_intake(slug: str) -> Provider:
    """The enabled provider with this slug; ProviderNotFound (404) otherwise."""

    def load() -> Provider:
        provider = (Provider.objects.filter(slug=slug, enabled=True)
                    .only("id", "slug", "kind", "environment", "enabled", "webhook_tolerance").first())
        if provider is None or scheme_for(provider.kind) is None:
            raise ProviderNotFound()  # raised, so never cached
        return provider

    return verify_cache.cached(("provider", slug), load)


def webhook_receive(*, provider: Provider, headers: Headers, body: bytes,
                    request_id: str | None = None, now: float | None = None) -> IntakeResult:
    """Verify and store one delivery; raises an IntakeError (nothing stored) when refused.

    `headers` must have lower-case names. Each new event is enqueued when the
    transaction commits; a duplicate (same provider and event id) enqueues nothing.
    """
    scheme = scheme_for(provider.kind)
    try:
        _verify(provider=provider, scheme=scheme, headers=headers, body=body,
                now=time.time() if now is None else now)
        events = scheme.parse(headers=headers, body=body)
    except IntakeError as err:
        # Never the body or the signature in the log: only who and why.
        metrics.intake_total.labels(provider.slug, err.code).inc()
        logger.warning("webhook refused", extra={"provider": provider.slug, "reason": err.code})
        raise

    stored, duplicates = [], 0
    kept_headers = scheme.headers_to_store(headers)
    received = timezone.now()
    for parsed in events:
        # Outside a transaction each INSERT commits on its own, in one round trip; inside
        # one (ATOMIC_REQUESTS, a caller's block) a savepoint keeps a duplicate from
        # breaking it. Either way each event stands alone: one duplicate in a batch does
        # not undo the others.
        guard = transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()
        try:
            with guard:
                event = WebhookEvent.objects.create(
                    provider=provider, event_id=parsed.event_id, type=parsed.type, raw_body=body,
                    payload=parsed.payload, headers=kept_headers, request_id=request_id or "",
                    received_at=received, enqueued_at=received,
                )
        except IntegrityError:
            # The unique (provider, event_id) constraint decides, even for simultaneous
            # deliveries: the loser waits for the winner's commit and lands here.
            if not WebhookEvent.objects.filter(provider=provider, event_id=parsed.event_id).exists():
                raise  # some other integrity problem: not a duplicate, do not hide it
            duplicates += 1
            continue
        # Runs at once in autocommit, else after the surrounding transaction commits.
        enqueue_on_commit(event_pk=event.pk, request_id=request_id)
        stored.append(event.pk)
    if stored:
        metrics.intake_total.labels(provider.slug, "accepted").inc(len(stored))
    if duplicates:
        metrics.intake_total.labels(provider.slug, "duplicate").inc(duplicates)
    return IntakeResult(stored=stored, duplicates=duplicates)


# The plaintext secrets live only in this frame (and the scheme's), which has returned
# before anything else can fail, so a traceback of a later error cannot show them; error
# reports (mailed, logged with variables) hide them here too.
@sensitive_variables("secrets")
def _verify(*, provider: Provider, scheme, headers: Headers, body: bytes, now: float) -> None:
    secrets = verify_cache.cached(
        ("secrets", provider.pk, provider.environment, scheme.secret_purpose),
        lambda: credential_values_valid(provider=provider, purpose=scheme.secret_purpose))
    if not secrets:
        logger.error("webhook provider has no valid %s credential", scheme.secret_purpose,
                     extra={"provider": provider.slug})
        raise InvalidSignature()
    scheme.verify(headers=headers, body=body, secrets=secrets, tolerance=provider.webhook_tolerance, now=now)
