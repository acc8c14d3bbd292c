"""The addresses API: thin views that validate, call a service and render."""

from __future__ import annotations

import base64
import binascii

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from addresses import services
from addresses.conf import RESULTS_MAX_PAGE_SIZE, RESULTS_PAGE_SIZE
from addresses.models import BatchJob
from addresses.serializers import (
    BatchCreateSerializer,
    BatchJobSerializer,
    BatchResultsPageSerializer,
    VerificationSerializer,
    VerifyQuerySerializer,
)
from api.schema import AUTHENTICATION_ERROR, IDEMPOTENCY_ERRORS, IDEMPOTENCY_KEY, error_response
from idempotency.decorators import idempotent

NOT_FOUND = error_response("`not_found`: no such job of yours.")
UNAVAILABLE = error_response("`provider_unavailable`: the provider could not be reached in time; retry later "
                             "(`Retry-After`).")
NO_CACHE = OpenApiParameter(
    "Cache-Control", str, OpenApiParameter.HEADER,
    description="`no-cache`: skip the cached answer, ask the provider and store its answer.")


def _wants_refresh(request) -> bool:
    directives = request.headers.get("Cache-Control", "").lower()
    return "no-cache" in {d.strip() for d in directives.split(",")}


class Verify(APIView):
    """Verify one address."""

    @extend_schema(
        operation_id="addresses_verify", parameters=[VerifyQuerySerializer, NO_CACHE],
        description="Geocode and verify one address, through a cache shared by every client: a found address is "
                    "kept the provider's cache TTL (7 days for Nominatim), a not-found one a day. `found: false` "
                    "is an answer, not an error. `cached` says whether the provider was asked.",
        responses={200: VerificationSerializer,
                   400: error_response("`invalid_request`: `address` missing, blank or over 500 characters, or "
                                       "an unknown `provider` (named in `param`)."),
                   401: AUTHENTICATION_ERROR, 503: UNAVAILABLE},
    )
    def get(self, request):
        query = VerifyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        provider = services.address_provider_get(slug=query.validated_data.get("provider"))
        answer = services.address_verify(query=query.validated_data["address"], provider=provider,
                                         refresh=_wants_refresh(request))
        return Response(answer.as_dict())


class BatchCreate(APIView):
    """Start a batch verification job."""

    @extend_schema(
        operation_id="addresses_verify_batch_create", request=BatchCreateSerializer, parameters=[IDEMPOTENCY_KEY],
        description="Verify up to 10,000 addresses in the background, within the provider's rate limit. Identical "
                    "addresses (after normalisation) are fetched once. `202` with the job; follow its `status` and "
                    "`done`, then page its results.",
        responses={202: BatchJobSerializer, **IDEMPOTENCY_ERRORS,
                   400: error_response("`invalid_request` (e.g. `addresses.3`: blank or too long), "
                                       "`idempotency_key_missing`, `idempotency_key_invalid`. Not stored.")},
    )
    @idempotent
    def post(self, request):
        data = BatchCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        provider = services.address_provider_get(slug=data.validated_data.get("provider"))
        job = services.batch_create(consumer=request.user, provider=provider,
                                    addresses=data.validated_data["addresses"])
        return Response(BatchJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def _job(request, job_id: str) -> BatchJob:
    job = BatchJob.objects.select_related("provider").filter(pk=job_id, consumer=request.user).first()
    if job is None:
        raise Http404
    return job


class BatchDetail(APIView):
    """One of the consumer's batch jobs, with its progress."""

    @extend_schema(operation_id="addresses_verify_batch_retrieve",
                   responses={200: BatchJobSerializer, 401: AUTHENTICATION_ERROR, 404: NOT_FOUND})
    def get(self, request, job_id: str):
        return Response(BatchJobSerializer(_job(request, job_id)).data)


def _cursor(raw: str | None) -> int:
    """The last position of the previous page (-1: from the start); a cursor we did not make is a 400."""
    if raw is None:
        return -1
    try:
        text = base64.b64decode(raw.encode("ascii"), altchars=b"-_", validate=True).decode("ascii")
        if not text.startswith("p") or not text[1:].isdigit() or len(text) > 12:
            raise ValueError(text)
        return int(text[1:])
    except (ValueError, UnicodeError, binascii.Error):
        raise ValidationError({"cursor": ["Invalid cursor; use the `next` link as is."]}) from None


def _limit(raw: str | None) -> int:
    if raw is None:
        return RESULTS_PAGE_SIZE
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4 or not 1 <= int(raw) <= RESULTS_MAX_PAGE_SIZE:
        raise ValidationError({"limit": [f"Must be an integer from 1 to {RESULTS_MAX_PAGE_SIZE}."]})
    return int(raw)


class BatchResults(APIView):
    """A job's results in input order, a page at a time."""

    @extend_schema(
        operation_id="addresses_verify_batch_results",
        parameters=[OpenApiParameter("cursor", str, description="From the previous page's `next`, as is."),
                    OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": RESULTS_MAX_PAGE_SIZE},
                                     description=f"1-{RESULTS_MAX_PAGE_SIZE}, default {RESULTS_PAGE_SIZE}.")],
        description="The results in input order, one per input line (repeats included), each in the verify "
                    "answer's shape plus `position` and `status` (`pending` until fetched). Pages can be read "
                    "while the job runs.",
        responses={200: BatchResultsPageSerializer, 400: error_response("`invalid_request`: bad `cursor` or `limit`."),
                   401: AUTHENTICATION_ERROR, 404: NOT_FOUND},
    )
    def get(self, request, job_id: str):
        job = _job(request, job_id)
        after, limit = _cursor(request.query_params.get("cursor")), _limit(request.query_params.get("limit"))
        with transaction.atomic():  # lines and lookups read at one point in time
            results = services.batch_results(job=job, after=after, limit=limit)
        next_url = None
        if len(results) == limit and results[-1]["position"] < job.total - 1:
            cursor = base64.urlsafe_b64encode(f"p{results[-1]['position']}".encode()).decode()
            next_url = request.build_absolute_uri(f"{request.path}?cursor={cursor}&limit={limit}")
        return Response({"results": results, "next": next_url})
