"""Webhook handlers for email events, for every provider kind with the "email" capability.
Registered when the emails app is ready.

Each kind's adapter normalises its payload (`parse_event`) into an EmailEventData; the email
is found by our id (echoed back by the provider) or the provider's message id, the event is
kept on it, and its status only ever moves forward (emails.state): a late `deferred` after
`delivered` changes nothing, and a replayed event id adds nothing.
"""

from __future__ import annotations

import logging

from emails.models import Email
from emails.services import EMAIL, email_event_record, email_for_event
from integrations.adapters.email import EMAIL_EVENT_PREFIX, EVENT_TYPES
from integrations.kinds import adapter_for, all_kinds
from integrations.models import Provider
from webhooks.registry import Event, HandlerResult, webhook_handler

logger = logging.getLogger(__name__)

# The event types each email kind sends, as its webhook scheme stores them. Kinds may also
# declare theirs on the adapter (`event_types`); both are registered, so a kind added later
# with its own declaration needs no change here.
SENDGRID_TYPES = ("processed", "delivered", "bounce", "dropped", "deferred", "spamreport", "open", "click",
                  "unsubscribe", "group_unsubscribe", "group_resubscribe")
MAILGUN_TYPES = ("accepted", "delivered", "failed", "opened", "clicked", "complained", "unsubscribed")
SANDBOX_TYPES = tuple(sorted(EMAIL_EVENT_PREFIX + t for t in EVENT_TYPES))


def _declared_types() -> tuple[str, ...]:
    return tuple(sorted({type_ for kind in all_kinds() if EMAIL in kind.adapters
                         for type_ in getattr(kind.adapters[EMAIL], "event_types", ())}))


EMAIL_EVENT_TYPES = tuple(dict.fromkeys((*SENDGRID_TYPES, *MAILGUN_TYPES, *SANDBOX_TYPES, *_declared_types())))


@webhook_handler(capability=EMAIL, types=EMAIL_EVENT_TYPES)
def email_event(event: Event) -> HandlerResult | None:
    provider = Provider.objects.get(pk=event.provider_id)
    data = adapter_for(provider, EMAIL).parse_event(event.payload)
    if not data.type:
        return None  # an event this service does not track (unsubscribe, ...)
    email_id = email_for_event(provider_id=event.provider_id, data=data)
    if email_id is None:
        # Every send carries our id (custom_args / v:email_id) and its row exists before the
        # provider sees it, so an event matching none is another sender's on a shared account:
        # retrying it would only fill the dead letters.
        logger.info("email event for no email of ours", extra={"event": event.pk, "provider": event.provider_slug})
        return None
    email_event_record(email_id=email_id, provider_slug=event.provider_slug, provider_event_id=event.event_id,
                       data=data)
    return HandlerResult(subject_type=Email._meta.label_lower, subject_id=email_id)
