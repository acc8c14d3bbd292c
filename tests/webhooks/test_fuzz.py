"""Webhook intake fuzzing: whatever arrives, the answer is 200, 400, 404, 405 or 413 (never
a 500), and nothing is stored unless the answer is 200.

For every provider kind, deliveries are drawn from scenarios: intact ones, valid
signatures over mutated bodies or with mutated, missing or random headers (so that
verification itself runs, not only header parsing), wrong secrets, stale timestamps,
random and invalid UTF-8 bodies, bodies over the limit, other methods, unknown providers.
Each scenario says which answer it must get where that is certain. The bulk goes through
Django's test client; a few chunked deliveries, some over the limit, through a real
gunicorn. The seed is fixed (derandomize), so a failure reproduces.

For a long run set FUZZ_MAX_EXAMPLES (default 70: the test client's examples per kind,
shared among its scenarios; gunicorn gets a twentieth of it per scenario, at least 2).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from integrations.kinds import all_kinds
from tests.support import webhook_signing as signing
from tests.support.web_server import gunicorn_server, post_chunked
from webhooks.conf import webhook_settings
from webhooks.models import WebhookEvent
from webhooks.schemes import scheme_for

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "70"))
FUZZ = hsettings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ALLOWED = {200, 400, 404, 405, 413}
KINDS = sorted(k.name for k in all_kinds() if k.webhook_scheme)  # a new kind fails here (make_sender) until the fuzz knows how to sign it
CLIENT_LIMIT = 4096  # WEBHOOK_MAX_BODY_BYTES for the test client: over-limit bodies stay small
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-entirely-32-bytes").decode()
_ids = itertools.count(1)

if TYPE_CHECKING:
    from tests.webhooks.conftest import Sender

# The headers each scheme's signature covers: anything wrong there is invalid_signature.
VERIFIED = {"standard": {"webhook-id", "webhook-timestamp", "webhook-signature"},
            "sandbox": {"webhook-id", "webhook-timestamp", "webhook-signature"},
            "stripe": {"stripe-signature"}, "razorpay": {"x-razorpay-signature"},
            "github": {"x-hub-signature-256"},
            "sendgrid": {"x-twilio-email-event-webhook-signature", "x-twilio-email-event-webhook-timestamp"},
            "mailgun": set()}
TIMESTAMPED = {"standard", "sandbox", "stripe", "sendgrid", "mailgun"}
# Signed inside the body (over part of it), with no signature header: a body that is not the
# provider's JSON carries no signature, and headers are never checked.
BODY_SIGNED = {"mailgun"}
HEADER_SCENARIOS = {"header_replaced", "header_tweaked", "header_spliced", "headers_dropped", "random_headers"}

INVALID_UTF8 = [b"\xff", b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]
# Header values a front end could hand over, and some only a test client can make (NUL,
# lone surrogates): in the headers the schemes read, every one must be a 400.
HOSTILE = ["", " ", "\t", "é", "ÿ" * 64, "\u2603", "\U0001f600", "0" * 64, "v1,", "v1,AAAA", "t=1,v1=",
           "sha256=" + "g" * 64, "=", ",", " , ", "9" * 13, "-1", "\x00", "a\x00b", "\ud800", "\udcff" * 64]
# Through a real server: latin-1 text without control characters (gunicorn refuses those).
WIRE_HOSTILE = [v for v in HOSTILE if all(" " <= c <= "\xff" and not 0x7f <= ord(c) < 0xa0 for c in v)]
# Spliced into a well-formed value, so the odd character reaches the code past the parsing
# (no whitespace: stripped at either end, it would leave the value valid).
ODD_CHARS = "é\u2603\U0001f600\x00\x7f\ud800\udcff"
WIRE_ODD_CHARS = "éÿ¤"

client_text = st.text(st.characters(exclude_categories=("Cs", "Cc")) | st.just("\t"), max_size=80)
wire_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff, exclude_categories=("Cc",)),
                    max_size=80)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
event_types = st.from_regex(r"[a-z]{1,8}(\.[a-z_]{1,8}){0,2}", fullmatch=True)


@dataclass(frozen=True)
class Wire:
    """How deliveries reach the intake: the body limit there, and what header values can pass."""

    limit: int
    text: st.SearchStrategy[str]
    hostile: list[str]
    odd_chars: str


CLIENT_SCENARIOS = ("intact", "random_body", "invalid_utf8", "body_mutated", "wrong_secret", "stale",
                    "header_replaced", "header_tweaked", "header_spliced", "headers_dropped",
                    "random_headers", "over_limit", "wrong_method", "unknown_provider")
GUNICORN_SCENARIOS = ("intact", "random_body", "invalid_utf8", "body_mutated", "wrong_secret",
                      "header_spliced", "random_headers", "over_limit")


@dataclass
class Delivery:
    """One drawn delivery and the answers it may get: `expect` holds (status, error type)
    pairs (None for a 200), or is None when any allowed answer will do."""

    scenario: str
    sender: Sender
    body: bytes
    headers: dict[str, str]
    method: str = "POST"
    slug: str = ""
    expect: set[tuple[int, str | None]] | None = None


def sign(sender: Sender, body: bytes, event_id: str, *, secret: str | None = None,
         timestamp: int | None = None) -> dict[str, str]:
    """Signature headers for any bytes (the providers' libraries sign only UTF-8 text)."""
    secret = secret or sender.secret
    if sender.kind in ("standard", "sandbox"):
        return signing.standard_headers_for_bytes(body=body, msg_id=event_id, secret=secret, timestamp=timestamp)
    if sender.kind == "stripe":
        return signing.stripe_headers_for_bytes(body=body, secret=secret, timestamp=timestamp)
    return sender.headers(body, event_id, secret=secret, timestamp=timestamp)


def scheme_headers(sender: Sender) -> list[str]:
    scheme = scheme_for(sender.kind)
    return sorted({*scheme.signature_headers, *scheme.stored_headers})


def padded(limit: int, over: int) -> bytes:
    """A JSON event body of limit + over bytes."""
    head, tail = b'{"id":"evt_big","type":"big.event","pad":"', b'"}'
    return head + b"p" * (limit + over - len(head) - len(tail)) + tail


def index(draw, size: int) -> int:
    """A position in [0, size): drawn independently of `size`, which can differ between
    runs of one example (an ECDSA signature's length), so that replaying it draws alike."""
    return draw(st.integers(0, 2**16)) % max(size, 1)


def mutate(draw, body: bytes) -> bytes:
    """`body` with at least one byte changed, added or removed."""
    how = draw(st.sampled_from(["flip", "append", "truncate", "insert"]))
    if how == "flip" and body:
        i = index(draw, len(body))
        return body[:i] + bytes([body[i] ^ draw(st.integers(1, 255))]) + body[i + 1:]
    if how == "truncate" and body:
        return body[:index(draw, len(body))]
    if how == "insert":
        i = index(draw, len(body) + 1)
        return body[:i] + draw(st.binary(min_size=1, max_size=8)) + body[i:]
    return body + draw(st.binary(min_size=1, max_size=16))


def tweak(draw, value: str) -> str:
    """`value` with one character replaced, inserted or removed, or its case changed."""
    how = draw(st.sampled_from(["replace", "insert", "remove", "case"]))
    i = index(draw, len(value))
    char = draw(st.sampled_from("0aAzZ+/=,. v1t"))
    if how == "replace" and value:
        return value[:i] + char + value[i + 1:]
    if how == "remove" and value:
        return value[:i] + value[i + 1:]
    if how == "case":
        return value.swapcase()
    return value[:i] + char + value[i:]


def draw_delivery(draw, sender: Sender, wire: Wire, scenario: str) -> Delivery:
    event_id = f"fz{next(_ids):09}"  # fresh on every run, so an intact delivery is never a duplicate
    _, body = sender.body(event_id, draw(event_types))
    headers = sign(sender, body, event_id)
    kind, verified = sender.kind, VERIFIED[sender.kind]
    expect = {(200, None)}
    value = st.one_of(wire.text, st.sampled_from(wire.hostile))

    if kind in BODY_SIGNED and scenario in HEADER_SCENARIOS:
        pass  # no header to tamper with: the delivery stays intact
    elif kind in BODY_SIGNED and scenario in ("random_body", "invalid_utf8"):
        body = draw(st.binary(max_size=300)) if scenario == "random_body" else body + draw(st.sampled_from(INVALID_UTF8))
        expect = {(400, "invalid_signature")}  # no readable signature in it
    elif kind in BODY_SIGNED and scenario == "body_mutated":
        # Only the signature block is signed: a change elsewhere may still verify.
        body, expect = mutate(draw, body), None
    elif kind in BODY_SIGNED and scenario == "wrong_secret":
        body, expect = signing.mailgun_resign(body, secret=OTHER_SECRET), {(400, "invalid_signature")}
    elif kind in BODY_SIGNED and scenario == "stale":
        offset = (sender.provider.webhook_tolerance + draw(st.integers(5, 10**6))) * draw(st.sampled_from([-1, 1]))
        body = signing.mailgun_resign(body, secret=sender.secret, timestamp=int(time.time()) + offset)
        expect = {(400, "timestamp_out_of_tolerance")}
    elif scenario == "random_body":
        raw = draw(st.one_of(
            st.binary(max_size=300),
            st.builds(lambda v, a: json.dumps(v, ensure_ascii=a).encode("utf-8", "surrogatepass"),
                      json_values, st.booleans())))
        body, headers = raw, sign(sender, raw, event_id)
        expect = {(200, None), (400, "invalid_payload")}
    elif scenario == "invalid_utf8":
        i = index(draw, len(body) + 1)
        body = body[:i] + draw(st.sampled_from(INVALID_UTF8)) + body[i:]
        headers, expect = sign(sender, body, event_id), {(400, "invalid_payload")}
    elif scenario == "body_mutated":
        body, expect = mutate(draw, body), {(400, "invalid_signature")}
    elif scenario == "wrong_secret":
        headers, expect = sign(sender, body, event_id, secret=OTHER_SECRET), {(400, "invalid_signature")}
    elif scenario == "stale":
        # At least 5 s past the tolerance: the signed second is truncated, and the intake's
        # clock runs on while the example is built.
        offset = (sender.provider.webhook_tolerance + draw(st.integers(5, 10**6))) * draw(st.sampled_from([-1, 1]))
        headers = sign(sender, body, event_id, timestamp=int(time.time()) + offset)
        if kind in TIMESTAMPED:
            expect = {(400, "timestamp_out_of_tolerance")}
    elif scenario in ("header_replaced", "header_tweaked"):
        name = draw(st.sampled_from(scheme_headers(sender)))
        if scenario == "header_tweaked":
            headers[name] = tweak(draw, headers[name])
            expect = None  # a hex signature in other case, say, still verifies
        else:
            headers[name] = draw(value)
            # Random text is never a valid signature; an id or type header is not signed.
            expect = {(400, "invalid_signature")} if name in verified else {(200, None), (400, "invalid_payload")}
    elif scenario == "header_spliced":
        name = draw(st.sampled_from(scheme_headers(sender)))
        i = index(draw, len(headers[name]) + 1)
        headers[name] = headers[name][:i] + draw(st.sampled_from(wire.odd_chars)) + headers[name][i:]
        expect = {(400, "invalid_signature" if name in verified else "invalid_payload")}
    elif scenario == "headers_dropped":
        dropped = draw(st.sets(st.sampled_from(scheme_headers(sender)), min_size=1))
        headers = {k: v for k, v in headers.items() if k not in dropped}
        expect = {(400, "invalid_signature" if dropped & verified else "invalid_payload")}
    elif scenario == "random_headers":
        names = draw(st.sets(st.sampled_from(scheme_headers(sender))))
        headers = {name: draw(value) for name in names}
        expect = {(400, "invalid_signature")}
    elif scenario == "over_limit":
        body = padded(wire.limit, draw(st.integers(1, 50_000)))
        headers = draw(st.sampled_from([sign(sender, body, event_id), {}]))

    # Headers no scheme reads, but the intake stores: any text a client may send.
    for name in draw(st.sets(st.sampled_from(["user-agent", "x-request-id"]))):
        headers[name] = draw(wire.text)
    if len(body) > wire.limit:
        expect = {(413, "payload_too_large")}
    delivery = Delivery(scenario, sender, body, headers, slug=sender.provider.slug, expect=expect)
    if scenario == "wrong_method":
        delivery.method, delivery.expect = draw(st.sampled_from(["GET", "PUT", "PATCH", "DELETE"])), {
            (405, "method_not_allowed")}
    elif scenario == "unknown_provider":
        delivery.slug = "nope-" + draw(st.from_regex(r"[a-z0-9_-]{1,20}", fullmatch=True))
        delivery.expect = {(404, "not_found")}
    return delivery


def check(delivery: Delivery, status: int, content: bytes, last_pk: int) -> None:
    """The fuzz's oracle: an allowed status in the contract's shape, the expected one where
    the scenario fixes it, and events stored exactly when the answer is 200."""
    note = f"{delivery.scenario}: {status} {content[:300]!r}"
    assert status in ALLOWED, note
    answer = json.loads(content)
    new = list(WebhookEvent.objects.filter(pk__gt=last_pk))
    if delivery.expect is not None:
        assert (status, None if status == 200 else answer["error"]["type"]) in delivery.expect, note
    if status != 200:
        assert set(answer) == {"error"} and answer["error"]["type"], note
        assert not new, note
        return
    assert answer["received"] is True, note
    assert (len(new) == 0) == answer["duplicate"], note
    for event in new:
        assert bytes(event.raw_body) == delivery.body and event.provider_id == delivery.sender.provider.pk, note


def last_event_pk() -> int:
    return WebhookEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def fuzz(run: Callable[[st.DataObject, str], None], scenarios: tuple[str, ...], per_scenario: int) -> None:
    """`run(data, scenario)` for `per_scenario` examples of each scenario: every scenario is
    exercised whatever the budget (a drawn scenario could go unseen in a short run)."""
    for scenario in scenarios:
        def example(data, scenario):
            run(data, scenario)

        given(data=st.data(), scenario=st.just(scenario))(hsettings(FUZZ, max_examples=per_scenario)(example))()


# --- the bulk, through Django's test client --------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_the_intake_answers_any_delivery_within_the_contract(kind, sender_of, client, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = CLIENT_LIMIT
    sender = sender_of(kind)
    wire = Wire(CLIENT_LIMIT, client_text, HOSTILE, ODD_CHARS)

    def run(data, scenario):
        delivery = draw_delivery(data.draw, sender, wire, scenario)
        last_pk = last_event_pk()
        response = client.generic(delivery.method, f"/webhooks/{delivery.slug}/", data=delivery.body,
                                  content_type="application/json", **signing.as_meta(delivery.headers))
        check(delivery, response.status_code, response.content, last_pk)

    fuzz(run, CLIENT_SCENARIOS, max(1, MAX_EXAMPLES // len(CLIENT_SCENARIOS)))


# --- chunked, through a real gunicorn --------------------------------------------------

@pytest.fixture(scope="module")
def web_url(django_db_setup, tmp_path_factory):
    with gunicorn_server(log_dir=tmp_path_factory.mktemp("gunicorn-logs")) as url:
        yield url


@pytest.mark.django_db(transaction=True)
def test_chunked_deliveries_through_gunicorn_are_answered_within_the_contract(web_url, sender_of, task_queue):
    """(`task_queue` purges what the server queued: a Redis broker outlives the database flush.)"""
    senders = {kind: sender_of(kind) for kind in KINDS}
    wire = Wire(webhook_settings.MAX_BODY_BYTES, wire_text, WIRE_HOSTILE, WIRE_ODD_CHARS)

    def run(data, scenario):
        delivery = draw_delivery(data.draw, senders[data.draw(st.sampled_from(KINDS))], wire, scenario)
        # Small bodies in small pieces (many chunk headers); a large one in bigger pieces.
        sizes = st.integers(1, 64) if len(delivery.body) < 10_000 else st.integers(4096, 65536)
        last_pk = last_event_pk()
        answer = post_chunked(f"{web_url}/webhooks/{delivery.slug}/", delivery.body,
                              {"Content-Type": "application/json", **delivery.headers},
                              chunk_size=data.draw(sizes))
        check(delivery, answer.status, answer.body, last_pk)

    fuzz(run, GUNICORN_SCENARIOS, max(2, MAX_EXAMPLES // 20))


def test_the_byte_signers_agree_with_the_providers_libraries():
    """The fuzz signs with helpers that take any bytes; on UTF-8 they must match the
    libraries the other tests use."""
    body, now = b'{"type":"x","data":{"n":1}}', int(time.time())
    assert signing.standard_headers_for_bytes(body=body, msg_id="m1", timestamp=now) == \
        signing.standard_headers(body=body, msg_id="m1", timestamp=now)
    assert signing.stripe_headers_for_bytes(body=body, timestamp=now) == signing.stripe_headers(body=body, timestamp=now)
