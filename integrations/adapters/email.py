"""The email adapter interface: dataclasses in and out, and the base class each kind's adapter fills in.

An email adapter turns a provider-neutral `EmailMessage` into one call through the outbound
client and the answer into a `SendResult`, and reads one stored webhook event's payload into
an `EmailEventData`. A kind offers email by naming its adapter in its module:
`Kind(..., adapters={"email": ...})`; callers find it with
`integrations.kinds.adapter_for(provider, "email")`.

"Never sent twice" (docs/design, "Email") rests on `deduplicates` and the errors of `send`:

- a provider that deduplicates by an idempotency key (`deduplicates = True`) gets the message's
  `idempotency_key` on every attempt; any failure is ProviderUnavailable, and the caller
  retries later with the same key;
- one that does not gets one attempt per `send` call; ProviderUnavailable means the request
  certainly did not arrive (nothing sent, or the provider answered 429/5xx) and the caller may
  retry; `DeliveryUnknown` means it may have arrived (read timeout, connection lost after
  sending): the caller must not retry on its own.

Errors are the client's (integrations.errors), plus DeliveryUnknown: no hierarchy of our own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from integrations.errors import ProviderUnavailable

# The normalised event types every adapter's parse_event returns (anything else is ignored).
EVENT_TYPES = frozenset({"processed", "delivered", "deferred", "bounced", "dropped", "complained",
                         "opened", "clicked"})
# The sandbox's event types are these with a prefix: "email.delivered", ...
EMAIL_EVENT_PREFIX = "email."


@dataclass(frozen=True)
class EmailMessage:
    """One email to send. `email_id` is ours (em_...), sent along for correlating events;
    `idempotency_key` is the email's outbound key, the same on every attempt."""

    email_id: str
    idempotency_key: str
    from_address: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: str = ""
    subject: str = ""
    text: str = ""
    html: str = ""


@dataclass(frozen=True)
class SendResult:
    """The provider's answer to a send. `status` is "sent" (accepted for delivery) or
    "failed" (refused for good: an invalid recipient, a message too large, ...)."""

    status: str
    provider_message_id: str = ""
    failure_code: str = ""
    failure_message: str = ""

    @property
    def sent(self) -> bool:
        return self.status == "sent"


@dataclass(frozen=True)
class EmailEventData:
    """One provider event about one email and one recipient, normalised.

    `type` is one of EVENT_TYPES or "" for an event this service does not track (the handler
    ignores it). `email_id` is ours when the provider echoed it back (custom args / user
    variables), else match on `provider_message_id`. `recipient` is the address (hash it
    before storing or logging it)."""

    type: str
    email_id: str = ""
    provider_message_id: str = ""
    recipient: str = ""
    occurred_at: datetime | None = None


class DeliveryUnknown(Exception):  # noqa: N818 - the contract's word for the state it leads to
    """Ambiguous: the request may have arrived at a provider that does not deduplicate.

    `result` is the client's CallResult (error_code ETIMEDOUT or ECONN). The email must not be
    sent again automatically: the contract marks it `unknown` for staff to decide."""

    def __init__(self, result):
        self.result = result
        super().__init__(f"provider {result.provider!r} {result.error_code}: {result.message} "
                         "(the message may have been accepted)")


def event_time(value) -> datetime | None:
    """A provider's Unix timestamp (seconds, possibly fractional) as an aware datetime; None
    when absent or not a plausible number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def default_from_for(provider) -> str:
    """The sender configured on `provider` (its `email_from`), or "" (nothing configured:
    the API then asks for `from`)."""
    return provider.email_from or ""


def email_event_types() -> frozenset[str]:
    """Every event type the webhooks of kinds offering email carry (each adapter's
    `event_types`): what the emails app registers its handler for, with capability "email"."""
    from integrations.kinds import all_kinds  # kind modules import this one

    adapters = [kind.adapters["email"] for kind in all_kinds() if "email" in kind.adapters]
    return frozenset().union(*(adapter.event_types for adapter in adapters))


class EmailAdapter:
    """What an email provider must do: `send` and `parse_event` (and say whether it
    `deduplicates`). Subclasses live in integrations/kinds/<kind>.py."""

    # True when the provider deduplicates by Idempotency-Key: every attempt carries the same
    # key and the outbound client may retry a send by itself.
    deduplicates: bool = False
    # The event types this kind's webhooks carry, as its scheme stores them (before
    # normalisation): what the emails app registers its webhook handler for.
    event_types: frozenset[str] = frozenset()

    def __init__(self, provider):
        self.provider = provider

    @property
    def default_from(self) -> str:
        """The provider's configured sender ("" when none): see `default_from_for`."""
        return default_from_for(self.provider)

    def send(self, message: EmailMessage) -> SendResult:
        """Send `message`. A definitive refusal is a failed SendResult, not an error.

        Raises ProviderUnavailable (with the call's result) when the message was certainly
        not accepted and a later try may work (not reached, 429, 5xx, a credential the
        provider refused, ...); DeliveryUnknown when it may have been accepted by a provider
        that does not deduplicate; CredentialMissing when the provider has no credential.
        """
        raise NotImplementedError

    def parse_event(self, payload) -> EmailEventData:
        """One stored webhook event's payload (the JSON object the webhook scheme stored for
        that event id), normalised. Never raises for an unknown event: its `type` is ""."""
        raise NotImplementedError

    # -- shared steps -------------------------------------------------------------------
    def _call(self, path: str, *, message: EmailMessage, operation: str = "email.send", **body):
        """The client's CallResult for one send. The idempotency key goes out only to a
        provider that deduplicates: without one the client never retries the POST."""
        from integrations.client import ProviderClient  # the client imports models; keep this lazy

        key = message.idempotency_key if self.deduplicates else None
        return ProviderClient(self.provider).request("POST", path, idempotency_key=key, operation=operation,
                                                     expect_json=False, **body)

    def _not_sent(self, result) -> SendResult:
        """A failed call as a failed SendResult (refused for good), or the error to raise.

        Certainly not accepted and worth a later try: ProviderUnavailable. No answer after
        the request may have left: DeliveryUnknown, unless the provider deduplicates.
        Refused for good (400, 413, ...): a failed result from `refusal(result)`.
        """
        status = result.status
        if status is None:
            if result.maybe_delivered and not self.deduplicates:
                raise DeliveryUnknown(result)
            raise ProviderUnavailable(result)
        if status in _RETRY_LATER or status >= 500 or not 400 <= status < 500:
            # 3xx (never followed) is a wrong base URL: configuration, like 401/403/404.
            raise ProviderUnavailable(result)
        code, text = self.refusal(result)
        return SendResult(status="failed", failure_code=code, failure_message=text[:1000])

    def refusal(self, result) -> tuple[str, str]:
        """(failure_code, failure_message) for a definitive 4xx refusal; subclasses read their
        provider's error body. The default names the status only."""
        return _status_code(result.status), f"HTTP {result.status}"


# 4xx answers that are "not now" for a send (the message stays queued and is retried until
# EMAIL_SEND_DEADLINE): 401/403 a wrong or revoked key and 404 a wrong base URL or domain are
# our configuration, which staff fix (failing every email for it would lose mail); 408 and
# 429 the provider's own "try later". Refused, so retrying cannot send a message twice.
_RETRY_LATER = frozenset({401, 403, 404, 408, 409, 423, 429})


def _status_code(status: int | None) -> str:
    """The failure code for a refusal whose body says nothing we understand."""
    return {400: "invalid_request", 413: "message_too_large", 422: "invalid_request"}.get(status or 0, "rejected")
