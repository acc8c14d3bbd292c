"""Emails as atomic phases with recovery points, as payments/services.py does for charges.

An email goes: (1) the row is created with its outbound idempotency key, and the request's
recovery point moves to `email_created`, in one transaction; its send task is queued when
that commits and the API answers 202 at once. (2) The task claims the row (queued ->
sending, counting the attempt) in its own transaction, (3) calls the provider outside any
transaction, and (4) stores the outcome: sent, failed, back to queued with backoff (the
provider was certainly not reached, or has no credential) or unknown (it may have been
reached, by a provider that does not deduplicate). Each phase commits before the next, so a
worker dying anywhere leaves a row the sweeper can act on, and "never sent twice" holds:
a deduplicating provider is only ever retried with the same key; any other is retried only
when the request certainly did not arrive.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from config.request_id import current as current_request_id
from emails import metrics
from emails.conf import email_settings, send_deadline
from emails.errors import EmailNotResendable
from emails.models import Email, EmailEvent, EmailStatus, new_outbound_key
from emails.privacy import recipient_hash
from emails.queue import enqueue_send
from emails.state import email_apply_status, is_progress, record_change
from integrations.adapters.email import DeliveryUnknown, EmailEventData, EmailMessage, SendResult
from integrations.errors import CredentialMissing, ProviderUnavailable
from integrations.kinds import adapter_for, provider_offering
from integrations.models import Provider

logger = logging.getLogger(__name__)

EMAIL = "email"  # the capability a provider's kind must offer (integrations.kinds)
EMAIL_CREATED = "email_created"
# "Not now": the provider was certainly not reached or asked us to come back later
# (ProviderUnavailable), or it has no credential (our configuration). Retried with backoff.
_NOT_NOW = (ProviderUnavailable, CredentialMissing)
# What each normalised provider event says about the email; opens and clicks say nothing.
EVENT_STATUS = {
    "processed": EmailStatus.SENT,
    "delivered": EmailStatus.DELIVERED,
    "deferred": EmailStatus.DEFERRED,
    "bounced": EmailStatus.BOUNCED,
    "dropped": EmailStatus.DROPPED,
    "complained": EmailStatus.COMPLAINED,
}
_PURGED_CONTENT = {"text": "", "html": "", "reply_to": "", "recipients": {}}


# --- selectors ------------------------------------------------------------------------
def email_provider_get(*, slug: str | None) -> Provider:
    """The provider an email goes to: named, EMAIL_DEFAULT_PROVIDER, or the only one."""
    return provider_offering(EMAIL, slug=slug, default_slug=email_settings.DEFAULT_PROVIDER, what="email")


# --- creating -------------------------------------------------------------------------
def email_create(
    *,
    consumer,
    provider_slug: str | None,
    to: list[str],
    subject: str,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    from_address: str = "",
    reply_to: str = "",
    text: str = "",
    html: str = "",
    metadata: dict[str, str] | None = None,
    request_key: str = "",
    progress=None,
) -> Email:
    """Store an email and queue its sending; resumes where `progress` says it stopped.

    Addresses are validated by the caller (the serializer). Raises ValidationError naming
    `provider` or `from` when there is no provider to use or no sender to send as.
    """
    if progress is not None and progress.resource_id:
        return Email.objects.select_related("provider").get(pk=progress.resource_id)
    provider = email_provider_get(slug=provider_slug)
    sender = from_address or adapter_for(provider, EMAIL).default_from
    if not sender:
        raise ValidationError({"from": [f"Required: provider {provider.slug!r} has no configured sender."]})
    cc, bcc = list(cc or []), list(bcc or [])
    everyone = [*to, *cc, *bcc]
    with transaction.atomic():
        email = Email.objects.create(
            consumer=consumer, provider=provider, from_address=sender, reply_to=reply_to,
            recipients={"to": list(to), "cc": cc, "bcc": bcc}, recipient_count=len(everyone),
            recipient_hashes=[recipient_hash(a) for a in everyone], subject=subject, text=text, html=html,
            metadata=metadata or {}, outbound_idempotency_key=new_outbound_key(), request_key=request_key,
            enqueued_at=timezone.now(),
        )
        record_change(email, "", "api")
        if progress is not None:
            progress.checkpoint(EMAIL_CREATED, resource_id=email.id)
        # robust: a broker that refuses the task leaves the email to the sweeper, not a 500.
        transaction.on_commit(partial(enqueue_send, email.id, current_request_id()), robust=True)
    logger.info("email queued", extra={"email": email.id, "provider": provider.slug,
                                       "recipients": email.recipient_count})
    return email


# --- sending (the task) -----------------------------------------------------------------
def retry_delay(attempts: int) -> timedelta:
    """Backoff after the `attempts`-th attempt found the provider unavailable."""
    base, cap = float(email_settings.RETRY_BASE_SECONDS), float(email_settings.RETRY_MAX_SECONDS)
    return timedelta(seconds=min(cap, base * 2 ** max(attempts - 1, 0)))


def _purge_fields() -> dict:
    """What a final send outcome clears: bodies and addresses, unless EMAIL_KEEP_BODIES."""
    if email_settings.KEEP_BODIES:
        return {}
    return {**_PURGED_CONTENT, "content_purged_at": timezone.now()}


def _claim(email_id: str, now: datetime) -> Email | None:
    """Phase 2: queued -> sending, counting the attempt; None when the email is not due."""
    with transaction.atomic():
        # The row lock queues concurrent tasks of one email here; the losers then see `sending`.
        email = (Email.objects.select_for_update(of=("self",)).select_related("provider")
                 .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
                         pk=email_id, status=EmailStatus.QUEUED).first())
        if email is None:
            return None
        if now >= email.created + send_deadline():
            _fail(email, "send_deadline_exceeded", "The provider could not take the email before "
                  f"{email_settings.setting_name('SEND_DEADLINE')} passed.", source="task: deadline")
            return None
        previous = email.status
        email.status = EmailStatus.SENDING
        email.attempts += 1
        email.claimed_at = now
        email.next_attempt_at = None
        email.save()
        record_change(email, previous, f"task: send attempt {email.attempts}")
    return email


def _fail(email: Email, code: str, message: str, *, source: str) -> None:
    previous = email.status
    email.status = EmailStatus.FAILED
    email.failure_code, email.failure_message = code[:100], message[:1000]
    for name, value in _purge_fields().items():
        setattr(email, name, value)
    email.save()
    record_change(email, previous, source)


def _mine(email: Email):
    """The row as long as this attempt still owns it (the sweeper may have taken it over)."""
    return (Email.objects.select_for_update().filter(pk=email.pk, status=EmailStatus.SENDING,
                                                     attempts=email.attempts).first())


def _message(email: Email) -> EmailMessage:
    recipients = email.recipients or {}
    return EmailMessage(
        email_id=email.id, idempotency_key=email.outbound_idempotency_key, from_address=email.from_address,
        to=tuple(recipients.get("to", ())), cc=tuple(recipients.get("cc", ())),
        bcc=tuple(recipients.get("bcc", ())), reply_to=email.reply_to, subject=email.subject,
        text=email.text, html=email.html,
    )


def email_send(*, email_id: str, now: datetime | None = None) -> str | None:
    """One send attempt of a queued email; returns its new status, or None when it was not
    due (already sent or being sent, or waiting for its backoff). `now` is for tests."""
    now = now or timezone.now()
    email = _claim(email_id, now)
    if email is None:
        return None
    slug = email.provider.slug
    try:
        adapter = adapter_for(email.provider, EMAIL)
    except LookupError:  # the kind no longer sends email: nothing was sent
        return _store_not_now(email, now, "no_email_adapter")
    try:
        result = adapter.send(_message(email))
    except _NOT_NOW as err:
        code = err.result.error_code if isinstance(err, ProviderUnavailable) else "credential_missing"
        return _store_not_now(email, now, code)
    except DeliveryUnknown as err:
        return _store_ambiguous(email, now, err.result.error_code, deduplicates=adapter.deduplicates)
    except Exception as err:  # noqa: BLE001 - a bug mid-send is as ambiguous as a read timeout
        # Only the type: an adapter's message may quote the request (addresses, bodies).
        logger.error("email send crashed", extra={"email": email.id, "provider": slug,
                                                  "error": type(err).__name__})
        return _store_ambiguous(email, now, type(err).__name__, deduplicates=adapter.deduplicates)
    return _store_result(email, result)


def _store_result(email: Email, result: SendResult) -> str:
    """Phase 4 for an answer: sent is stored whoever owns the row (it is the truth), failed
    only by the attempt that still owns it."""
    slug = email.provider.slug
    with transaction.atomic():
        current = Email.objects.select_for_update().get(pk=email.pk)
        if result.sent:
            current.provider_message_id = current.provider_message_id or result.provider_message_id[:255]
            current.sent_at = current.sent_at or timezone.now()
            current.failure_code = current.failure_message = ""
            for name, value in _purge_fields().items():
                setattr(current, name, value)
            previous = current.status
            if is_progress(previous, EmailStatus.SENT):
                current.status = EmailStatus.SENT
            current.save()
            if current.status != previous:
                record_change(current, previous, f"task: attempt {email.attempts} accepted")
        elif current.status == EmailStatus.SENDING and current.attempts == email.attempts:
            _fail(current, result.failure_code or "rejected", result.failure_message or "The provider refused it.",
                  source=f"task: attempt {email.attempts} refused")
    outcome = "sent" if result.sent else "failed"
    metrics.sends_total.labels(slug, outcome).inc()
    logger.info("email %s", outcome, extra={"email": email.id, "provider": slug, "attempt": email.attempts,
                                            "failure_code": result.failure_code})
    return current.status


def _store_not_now(email: Email, now: datetime, code: str) -> str | None:
    """Phase 4 when nothing was sent: back to queued with backoff, or failed past the deadline."""
    slug = email.provider.slug
    with transaction.atomic():
        current = _mine(email)
        if current is None:
            return None
        next_at = now + retry_delay(current.attempts)
        if next_at >= current.created + send_deadline():
            _fail(current, "send_deadline_exceeded", f"Last attempt: {code}. The provider could not take the email "
                  f"before {email_settings.setting_name('SEND_DEADLINE')} passed.",
                  source=f"task: attempt {current.attempts} {code}, deadline passed")
        else:
            current.status = EmailStatus.QUEUED
            current.next_attempt_at = next_at
            current.enqueued_at = None  # the sweeper queues it again once it is due
            current.failure_code = code[:100]
            current.save()
            record_change(current, EmailStatus.SENDING, f"task: attempt {current.attempts} {code}, retry later")
    metrics.sends_total.labels(slug, "retry" if current.status == EmailStatus.QUEUED else "failed").inc()
    logger.warning("email provider unavailable", extra={"email": email.id, "provider": slug,
                                                        "attempt": email.attempts, "error_code": code,
                                                        "status": current.status})
    return current.status


def _store_ambiguous(email: Email, now: datetime, code: str, *, deduplicates: bool) -> str | None:
    """Phase 4 when the message may have arrived: a deduplicating provider is retried with the
    same key; any other leaves the email `unknown`, for staff to decide (never re-sent here)."""
    if deduplicates:
        return _store_not_now(email, now, code)
    with transaction.atomic():
        current = _mine(email)
        if current is None:
            return None
        current.status = EmailStatus.UNKNOWN
        current.failure_code = code[:100]
        current.failure_message = ("The provider may have accepted the message; it is not sent again "
                                   "automatically. Staff may resend it from the admin.")
        current.save()
        record_change(current, EmailStatus.SENDING, f"task: attempt {current.attempts} {code}, outcome unknown")
    metrics.sends_total.labels(email.provider.slug, "unknown").inc()
    logger.warning("email delivery unknown", extra={"email": email.id, "provider": email.provider.slug,
                                                    "attempt": email.attempts, "error_code": code})
    return EmailStatus.UNKNOWN


# --- the sweeper ----------------------------------------------------------------------
def _deduplicates(provider: Provider) -> bool:
    try:
        return bool(adapter_for(provider, EMAIL).deduplicates)
    except LookupError:
        return False


def emails_sweep(*, now: datetime | None = None, limit: int | None = None) -> dict[str, int]:
    """Queue due emails again and settle ones whose worker died.

    Queued and due (its backoff passed, or its task not run within EMAIL_STALE_QUEUED_SECONDS
    of being queued, a task lost with a Redis worker): queued again. Sending for longer than
    EMAIL_STALE_SENDING_SECONDS: a deduplicating provider's is queued again (the same key makes
    the retry safe), any other's becomes `unknown`, since the message may have gone out.
    Safe to run anywhere, any number of times: every change is a compare-and-set.
    """
    now = now or timezone.now()
    limit = limit or int(email_settings.SWEEP_BATCH_SIZE)
    done = {"requeued": 0, "unknown": 0}
    stale_queued = now - timedelta(seconds=float(email_settings.STALE_QUEUED_SECONDS))
    due = (Email.objects.filter(status=EmailStatus.QUEUED)
           .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
           .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale_queued))
           .order_by("created").values_list("pk", "enqueued_at")[:limit])
    for pk, enqueued_at in list(due):
        if Email.objects.filter(pk=pk, status=EmailStatus.QUEUED, enqueued_at=enqueued_at).update(enqueued_at=now):
            enqueue_send(pk)
            done["requeued"] += 1

    stale_sending = now - timedelta(seconds=float(email_settings.STALE_SENDING_SECONDS))
    lost = (Email.objects.filter(status=EmailStatus.SENDING, claimed_at__lt=stale_sending)
            .select_related("provider").order_by("claimed_at")[:limit])
    for email in list(lost):
        outcome = _settle_lost(email, now)
        if outcome:
            done[outcome] += 1
    if any(done.values()):
        logger.info("emails swept", extra=done)
    return done


def _settle_lost(email: Email, now: datetime) -> str | None:
    """A `sending` row whose worker died: queued again (same key) or `unknown`; None if it moved on."""
    deduplicates = _deduplicates(email.provider)
    with transaction.atomic():
        current = _mine(email)
        if current is None or current.claimed_at != email.claimed_at:
            return None
        if deduplicates:
            current.status, current.enqueued_at, current.next_attempt_at = EmailStatus.QUEUED, now, None
            source = f"sweeper: attempt {current.attempts} lost, retry with the same key"
        else:
            current.status, current.failure_code = EmailStatus.UNKNOWN, "worker_lost"
            current.failure_message = ("The worker sending it stopped; the provider may have accepted the message. "
                                       "Staff may resend it from the admin.")
            source = f"sweeper: attempt {current.attempts} lost, outcome unknown"
        current.save()
        record_change(current, EmailStatus.SENDING, source)
    if deduplicates:  # committed: hand it to a worker (a lost push is swept again)
        enqueue_send(email.pk)
        return "requeued"
    logger.warning("email delivery unknown", extra={"email": email.pk, "provider": email.provider.slug,
                                                    "error_code": "worker_lost"})
    return "unknown"


# --- resending (staff) ----------------------------------------------------------------
def email_resend(*, email_id: str, by: str) -> Email:
    """Send an `unknown` email again, as a new send with a new outbound key (a deduplicating
    provider must not fold it into the first). Raises EmailNotResendable for any other status."""
    with transaction.atomic():
        email = Email.objects.select_for_update().get(pk=email_id)
        if email.status != EmailStatus.UNKNOWN or email.content_purged_at is not None:
            raise EmailNotResendable(f"Email {email.id} is {email.status}; only an unknown email can be resent.")
        email.status = EmailStatus.QUEUED
        email.outbound_idempotency_key = new_outbound_key()
        email.resends = F("resends") + 1
        email.next_attempt_at = None
        email.enqueued_at = timezone.now()
        email.failure_code = email.failure_message = ""
        email.save()
        email.refresh_from_db()
        record_change(email, EmailStatus.UNKNOWN, f"resend {email.resends} by {by}: a new send attempt")
        transaction.on_commit(partial(enqueue_send, email.id, current_request_id()), robust=True)
    logger.info("email resend requested", extra={"email": email.id, "resends": email.resends})
    return email


# --- provider events ------------------------------------------------------------------
def email_for_event(*, provider_id: int, data: EmailEventData) -> str | None:
    """The id of the email an event is about: by our id when echoed back, else the provider's."""
    emails = Email.objects.filter(provider_id=provider_id)
    if data.email_id:
        return emails.filter(pk=data.email_id).values_list("pk", flat=True).first()
    if data.provider_message_id:
        return emails.filter(provider_message_id=data.provider_message_id).values_list("pk", flat=True).first()
    return None


def email_event_record(*, email_id: str, provider_slug: str, provider_event_id: str,
                       data: EmailEventData) -> tuple[EmailEvent, bool]:
    """Keep one provider event on its email and move the status forward if it says so.
    Returns (event, created); a replayed event id changes nothing."""
    with transaction.atomic():
        event, created = EmailEvent.objects.get_or_create(
            email_id=email_id, provider_event_id=provider_event_id[:255],
            defaults={"type": data.type, "occurred_at": data.occurred_at or timezone.now(),
                      "recipient_hash": recipient_hash(data.recipient)})
        if not created:
            return event, False
        if data.provider_message_id:
            Email.objects.filter(pk=email_id, provider_message_id="").update(
                provider_message_id=data.provider_message_id[:255])
        status = EVENT_STATUS.get(data.type)
        if status is not None:
            email_apply_status(email_id=email_id, status=status, source=f"webhook:{provider_event_id}")
    metrics.events_total.labels(provider_slug, data.type).inc()
    return event, True
