"""POST /webhooks/<slug>/: a plain Django view (no DRF: the raw bytes must stay untouched)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from config.errors import error_response
from webhooks import metrics
from webhooks.conf import webhook_settings
from webhooks.errors import IntakeError, PayloadTooLarge
from webhooks.intake import intake_target, webhook_receive

# A body without a length is read in pieces this size: a stream may allocate what one
# read asks for, and a small body should not cost a limit-sized buffer.
READ_CHUNK_BYTES = 64 * 1024


def read_body(request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes: first by Content-Length (nothing read),
    then while reading (a sender may lie or stream), never holding more than limit + 1.

    A chunked body (`Transfer-Encoding: chunked`) has no Content-Length, and Django reads
    such a request as empty; when the server promises the stream ends
    (`wsgi.input_terminated`, as gunicorn does) it is read from wsgi.input instead.
    """
    meta = request.META
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(f"The body is over the {limit} byte limit.")
    if not meta.get("CONTENT_LENGTH") and meta.get("wsgi.input_terminated"):
        body = _read_to_end(meta["wsgi.input"], limit + 1)
    else:
        body = request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"The body is over the {limit} byte limit.")
    return body


def _read_to_end(stream, most: int) -> bytes:
    """Up to `most` bytes of a stream that ends (b"" at its end), in bounded reads."""
    chunks, size = [], 0
    while size < most:
        chunk = stream.read(min(READ_CHUNK_BYTES, most - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class MetaHeaders(Mapping[str, str]):
    """A request's headers by lower-case name, read from the WSGI environ on lookup.

    What the schemes need (`headers.get("webhook-id")`), without building a dict of every
    header for each delivery as `request.headers` does (a tenth of the intake's own
    Python time in bench/webhook_intake_profile.py).
    """

    _UNPREFIXED = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})

    def __init__(self, meta: Mapping[str, str]):
        self._meta = meta

    def _key(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        return key if key in self._UNPREFIXED else "HTTP_" + key

    def __getitem__(self, name: str) -> str:
        return self._meta[self._key(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._meta

    def __iter__(self) -> Iterator[str]:
        for key in self._meta:
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").lower()
            elif key in self._UNPREFIXED:
                yield key.replace("_", "-").lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


@csrf_exempt
def receive(request, slug: str):
    if request.method != "POST":
        response = error_response("method_not_allowed", "Webhooks are delivered with POST.", 405)
        response["Allow"] = "POST"
        return response
    try:
        target = intake_target(slug)
    except IntakeError as err:
        metrics.intake_total.labels("unknown", err.code).inc()
        return error_response(err.code, err.message, err.status_code)
    try:
        body = read_body(request, webhook_settings.MAX_BODY_BYTES)
        result = webhook_receive(target=target, headers=MetaHeaders(request.META), body=body,
                                 request_id=getattr(request, "request_id", None))
    except IntakeError as err:
        if isinstance(err, PayloadTooLarge):
            metrics.intake_total.labels(target.provider.slug, err.code).inc()
        return error_response(err.code, err.message, err.status_code)
    return JsonResponse({"received": True, "duplicate": result.duplicate})
