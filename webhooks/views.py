"""POST /webhooks/<slug>/: a plain Django view (no DRF: the raw bytes must stay untouched)."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from api.exceptions import error_body
from webhooks import conf, metrics
from webhooks.errors import IntakeError, PayloadTooLarge
from webhooks.intake import intake_target, webhook_receive


def read_body(request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes: first by Content-Length (nothing read),
    then while reading (a sender may lie or stream), never holding more than limit + 1."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(f"The body is over the {limit} byte limit.")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"The body is over the {limit} byte limit.")
    return body


@csrf_exempt
def receive(request, slug: str):
    if request.method != "POST":
        response = JsonResponse(error_body("method_not_allowed", "Webhooks are delivered with POST."), status=405)
        response["Allow"] = "POST"
        return response
    try:
        target = intake_target(slug)
    except IntakeError as err:
        metrics.intake_total.labels("unknown", err.code).inc()
        return JsonResponse(error_body(err.code, err.message), status=err.status_code)
    try:
        body = read_body(request, conf.get("WEBHOOK_MAX_BODY_BYTES"))
        headers = {name.lower(): value for name, value in request.headers.items()}
        result = webhook_receive(target=target, headers=headers, body=body,
                                 request_id=getattr(request, "request_id", None))
    except IntakeError as err:
        if isinstance(err, PayloadTooLarge):
            metrics.intake_total.labels(target.provider.slug, err.code).inc()
        return JsonResponse(error_body(err.code, err.message), status=err.status_code)
    return JsonResponse({"received": True, "duplicate": result.duplicate})
