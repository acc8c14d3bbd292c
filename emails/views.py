"""The emails API: thin views that validate, call a service and render."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from api.schema import AUTHENTICATION_ERROR, IDEMPOTENCY_ERRORS, IDEMPOTENCY_KEY, error_response
from emails import services
from emails.models import Email, EmailStatus
from emails.pagination import MAX_LIMIT, EmailCursorPagination
from emails.serializers import EmailCreateSerializer, EmailSerializer
from idempotency.decorators import idempotent

LIMIT = OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                         description=f"1-{MAX_LIMIT}, default {EmailCursorPagination.page_size}.")
CURSOR = OpenApiParameter("cursor", str, description="From a previous page's `next`/`previous`, as is.")
STATUS = OpenApiParameter("status", {"type": "string", "enum": list(EmailStatus.values)},
                          description="Only emails in this status.")
NOT_FOUND = error_response("`not_found`: no such email of yours.")


def _emails(consumer):
    return Email.objects.filter(consumer=consumer).select_related("provider").prefetch_related("events")


class EmailListCreate(APIView):
    """POST queues an email; GET lists the consumer's emails, newest first."""

    pagination_class = EmailCursorPagination

    @extend_schema(
        operation_id="emails_list",
        description="The consumer's emails, newest first, a page at a time. Follow `next` for older emails.",
        responses={200: EmailSerializer(many=True),
                   400: error_response("`invalid_request`: bad `limit`, `cursor` or `status` (named in `param`)."),
                   401: AUTHENTICATION_ERROR},
        parameters=[STATUS, LIMIT, CURSOR],
    )
    def get(self, request):
        emails = _emails(request.user)
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in EmailStatus.values:
                raise ValidationError({"status": [f"Must be one of: {', '.join(EmailStatus.values)}."]})
            emails = emails.filter(status=wanted)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(emails, request, view=self)
        return paginator.get_paginated_response(EmailSerializer(page, many=True).data)

    @extend_schema(
        operation_id="emails_create", request=EmailCreateSerializer, parameters=[IDEMPOTENCY_KEY],
        description="Queue an email. `202` with the email, `queued`: a worker sends it, retrying through "
                    "provider outages until the send deadline, and never sends it twice. Follow its `status` "
                    "with GET. A retry with the same Idempotency-Key and body returns the stored answer with "
                    "`Idempotent-Replayed: true` and queues nothing.",
        responses={202: EmailSerializer, **{code: r for code, r in IDEMPOTENCY_ERRORS.items() if code != 503}},
    )
    @idempotent
    def post(self, request):
        serializer = EmailCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        email = services.email_create(
            consumer=request.user, provider_slug=data.get("provider"), to=data["to"], cc=data["cc"],
            bcc=data["bcc"], from_address=data["from"], reply_to=data["reply_to"], subject=data["subject"],
            text=data["text"], html=data["html"], metadata=data["metadata"],
            request_key=request.META.get("HTTP_IDEMPOTENCY_KEY", "")[:255],
            progress=getattr(request, "idempotency", None),
        )
        email = _emails(request.user).get(pk=email.pk)
        return Response(EmailSerializer(email).data, status=status.HTTP_202_ACCEPTED)


class EmailDetail(APIView):
    """One of the consumer's emails, with its events."""

    @extend_schema(operation_id="emails_retrieve",
                   responses={200: EmailSerializer, 401: AUTHENTICATION_ERROR, 404: NOT_FOUND})
    def get(self, request, email_id: str):
        email = _emails(request.user).filter(pk=email_id).first()
        if email is None:
            raise Http404
        return Response(EmailSerializer(email).data)
