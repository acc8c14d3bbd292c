"""Email: SendGrid's v3 Mail Send (`POST /v3/mail/send`), deduplicated by Idempotency-Key, with
delivery events sent back a moment later as signed `email.<type>` webhooks.

What happens to a recipient depends on its address's local part (before any `+tag`):
`bounce` bounces, `defer` is deferred and then delivered, `drop` is dropped, `complain`
is delivered and then reported as spam; any other address is delivered. docs/sandbox.md
has the table.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

from sandbox.capabilities.base import Capability
from sandbox.capabilities.payments import Tally
from sandbox.messages import ApiError, SandboxRequest, SandboxResponse, new_id
from sandbox.routing import Route

# Seconds between the send and its first event, and between a recipient's later events.
EVENT_DELAY = 0.2
MAX_RECIPIENTS = 1000  # SendGrid's limit per request
# Close enough to what SendGrid accepts: one @, no spaces, a dot in the domain.
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

# Each recipient's story by local part: the events (our names, as in the `email.<type>` event
# type) sent one after the other. The first word of a story is its SendGrid event name.
STORIES = {
    "bounce": ("processed", "bounced"),
    "defer": ("processed", "deferred", "delivered"),
    "drop": ("dropped",),
    "complain": ("processed", "delivered", "complained"),
}
DELIVERED = ("processed", "delivered")
# Our event names -> SendGrid's `event` field, which the event object carries as well.
SENDGRID_NAMES = {"processed": "processed", "delivered": "delivered", "deferred": "deferred",
                  "bounced": "bounce", "dropped": "dropped", "complained": "spamreport"}


class SendGridError(ApiError):
    """An error in SendGrid's shape: {"errors": [{"message", "field", "help"}]}."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(status, "invalid_request_error", message)
        self.body = {"errors": [{"message": message, "field": field, "help": None}]}


def story(address: str) -> tuple[str, ...]:
    """The events a recipient gets, from its local part (`bounce+1@x.test` bounces)."""
    local = address.rsplit("@", 1)[0].split("+", 1)[0].lower()
    return STORIES.get(local, DELIVERED)


def _email_list(value: object, field: str, *, required: bool) -> list[str]:
    """The addresses of a `[{"email", "name"?}]` list; a 400 naming the field otherwise."""
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise SendGridError(400, f"The {field} parameter is required and must be a non-empty list.", field)
    addresses = []
    for index, item in enumerate(value):
        address = item.get("email") if isinstance(item, dict) else None
        if not isinstance(address, str) or not _ADDRESS.match(address):
            raise SendGridError(400, "Does not contain a valid address.", f"{field}.{index}.email")
        addresses.append(address)
    return addresses


def _one_email(value: object, field: str) -> str:
    """The address of a `{"email", "name"?}` object (`from`, `reply_to`)."""
    address = value.get("email") if isinstance(value, dict) else None
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise SendGridError(400, f"The {field} email does not contain a valid address.", f"{field}.email")
    return address


class Email(Capability):
    """Mail Send, kept as counts only (no bodies); each recipient's events follow in the background."""

    def routes(self) -> list[Route]:
        return [Route("POST", "/v3/mail/send", self.send)]

    def reset(self) -> None:
        self._tally = Tally()
        self._recipients = 0
        self._events: Counter = Counter()
        # Timers of a previous generation find it changed and send nothing after a reset.
        self._generation = getattr(self, "_generation", 0) + 1

    def stats(self) -> dict:
        return {"emails": {**self._tally.describe(), "recipients": self._recipients,
                           "events": dict(self._events)}}

    def send(self, request: SandboxRequest, *, data: dict, idempotency_key: str | None) -> SandboxResponse:
        recipients, email_id = self._validate(data)
        message_id = new_id("sbx")[:25]  # SendGrid's ids are 22 URL-safe characters; this is close
        with self.sandbox.lock:
            self._tally.add(idempotency_key)
            self._recipients += len(recipients)
            generation = self._generation
        for index, address in enumerate(recipients):
            base = {"email_id": email_id, "sg_message_id": f"{message_id}.sandbox{index:04d}.0",
                    "recipient": address}
            self._later(generation, base, story(address))
        # SendGrid answers 202 with no body; the id is in the body too because idempotent
        # replays keep the body, not the headers.
        return SandboxResponse(202, {"message_id": message_id}, {"X-Message-Id": message_id})

    def _validate(self, data: dict) -> tuple[list[str], str]:
        personalizations = data.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            raise SendGridError(400, "The personalizations field is required and must have at least one "
                                     "personalization.", "personalizations")
        recipients: list[str] = []
        for index, item in enumerate(personalizations):
            if not isinstance(item, dict):
                raise SendGridError(400, "Each personalization must be an object.", f"personalizations.{index}")
            for name in ("to", "cc", "bcc"):
                recipients += _email_list(item.get(name), f"personalizations.{index}.{name}", required=name == "to")
        if len(recipients) > MAX_RECIPIENTS:
            raise SendGridError(400, f"At most {MAX_RECIPIENTS} recipients per request.", "personalizations")
        _one_email(data.get("from"), "from")
        if data.get("reply_to") is not None:
            _one_email(data.get("reply_to"), "reply_to")
        if not isinstance(data.get("subject"), str) or not data["subject"].strip():
            raise SendGridError(400, "The subject is required.", "subject")
        content = data.get("content")
        if (not isinstance(content, list) or not content
                or not all(isinstance(c, dict) and isinstance(c.get("value"), str) and c["value"]
                           and c.get("type") in ("text/plain", "text/html") for c in content)):
            raise SendGridError(400, "The content value must be a non-empty list of text/plain or text/html "
                                     "parts with a value.", "content")
        custom_args = data.get("custom_args") or {}
        if not isinstance(custom_args, dict) or not all(isinstance(v, str) for v in custom_args.values()):
            raise SendGridError(400, "custom_args values must be strings.", "custom_args")
        return recipients, custom_args.get("email_id", "")

    def _later(self, generation: int, base: dict, events: tuple[str, ...]) -> None:
        """Send the first of `events` after EVENT_DELAY, then the rest, one per delay."""
        if not events:
            return

        def fire():
            with self.sandbox.lock:
                if generation != self._generation:
                    return  # the sandbox was reset meanwhile
                self._events[events[0]] += 1
            obj = {**base, "event": SENDGRID_NAMES[events[0]], "sg_event_id": new_id("sge_"),
                   "timestamp": int(self.sandbox.clock())}
            self.sandbox.emit(f"email.{events[0]}", obj)
            self._later(generation, base, events[1:])

        timer = threading.Timer(EVENT_DELAY, fire)
        timer.daemon = True
        timer.start()
