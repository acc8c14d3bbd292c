"""Intake: verify a delivery on its raw bytes, then store each event once.

Storing is all it does: no broker call on the request path. The stored row is the
queue; the relay (`manage.py webhook_relay`) hands new rows to the workers.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from integrations.credentials import credentials_valid_until
from integrations.models import Provider
from webhooks import metrics, verify_cache
from webhooks.errors import IntakeError, InvalidSignature, ProviderNotFound
from webhooks.models import WebhookEvent
from webhooks.schemes import Headers, Scheme, scheme_for

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


@dataclass(frozen=True)
class IntakeTarget:
    """What verifying a provider's deliveries needs: the provider, its scheme, and its
    valid secrets with the end of each one's validity (None: the current one).

    The secrets are left out of repr(), so an error page listing a frame's variables
    does not show them.
    """

    provider: Provider
    scheme: Scheme
    secrets: tuple[tuple[str, datetime | None], ...] = field(repr=False)

    def secrets_valid_at(self, at: datetime) -> list[str]:
        """The secrets valid at `at`, newest first: a grace period ends on time even
        when this target was loaded before it ended."""
        return [value for value, until in self.secrets if until is None or until > at]


def intake_target(slug: str) -> IntakeTarget:
    """The enabled provider with this slug and its verification secrets, through the
    verification cache; ProviderNotFound (404) otherwise."""

    def load() -> IntakeTarget:
        provider = (Provider.objects.filter(slug=slug, enabled=True)
                    .only("id", "slug", "kind", "environment", "enabled", "webhook_tolerance").first())
        scheme = scheme_for(provider.kind) if provider is not None else None
        if scheme is None:
            raise ProviderNotFound()  # raised, so never cached
        secrets = credentials_valid_until(provider=provider, purpose=scheme.secret_purpose)
        return IntakeTarget(provider=provider, scheme=scheme, secrets=tuple(secrets))

    return verify_cache.cached(("target", slug), load)


def webhook_receive(*, target: IntakeTarget, headers: Headers, body: bytes,
                    request_id: str | None = None, now: float | None = None) -> IntakeResult:
    """Verify and store one delivery for `target` (from `intake_target`); raises an
    IntakeError (nothing stored) when refused.

    `headers` must have lower-case names. A new event is stored as `received` with
    `enqueued_at` unset, which is what the relay looks for; a duplicate (same provider
    and event id) stores nothing.
    """
    provider, scheme = target.provider, target.scheme
    received = timezone.now()
    try:
        _verify(target=target, headers=headers, body=body, now=time.time() if now is None else now, at=received)
        events = scheme.parse(headers=headers, body=body)
    except IntakeError as err:
        # Never the body or the signature in the log: only who and why.
        metrics.intake_total.labels(provider.slug, err.code).inc()
        logger.warning("webhook refused", extra={"provider": provider.slug, "reason": err.code})
        raise

    stored, duplicates = [], 0
    kept_headers = scheme.headers_to_store(headers)
    for parsed in events:
        # Outside a transaction each INSERT commits on its own, in one round trip; inside
        # one (ATOMIC_REQUESTS, a caller's block) a savepoint keeps a duplicate from
        # breaking it. Either way each event stands alone: one duplicate in a batch does
        # not undo the others.
        guard = transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()
        try:
            with guard:
                event = WebhookEvent.objects.create(
                    provider_id=provider.pk, event_id=parsed.event_id, type=parsed.type, raw_body=body,
                    payload=parsed.payload, headers=kept_headers, request_id=request_id or "",
                    received_at=received)
        except IntegrityError:
            # The unique (provider, event_id) constraint decides, even for simultaneous
            # deliveries: the loser waits for the winner's commit and lands here.
            if not WebhookEvent.objects.filter(provider=provider, event_id=parsed.event_id).exists():
                raise  # some other integrity problem: not a duplicate, do not hide it
            duplicates += 1
            continue
        stored.append(event.pk)
    if stored:
        metrics.intake_total.labels(provider.slug, "accepted").inc(len(stored))
    if duplicates:
        metrics.intake_total.labels(provider.slug, "duplicate").inc(duplicates)
    return IntakeResult(stored=stored, duplicates=duplicates)


# The plaintext secrets appear as a variable only in this frame (and the scheme's), which
# has returned before anything else can fail, so a traceback of a later error cannot show
# them (elsewhere they sit inside an IntakeTarget, whose repr leaves them out); error
# reports (mailed, logged with variables) hide them here too.
@sensitive_variables("secrets")
def _verify(*, target: IntakeTarget, headers: Headers, body: bytes, now: float, at: datetime) -> None:
    """`now`: the clock the signed timestamp is checked against (seconds); `at`: the time
    the secrets must be valid at."""
    provider, scheme = target.provider, target.scheme
    secrets = target.secrets_valid_at(at)
    if not secrets:
        logger.error("webhook provider has no valid %s credential", scheme.secret_purpose,
                     extra={"provider": provider.slug})
        raise InvalidSignature()
    scheme.verify(headers=headers, body=body, secrets=secrets, tolerance=provider.webhook_tolerance, now=now)
