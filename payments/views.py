"""The charges API: thin views that validate, call a service and render."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from api.schema import AUTHENTICATION_ERROR, IDEMPOTENCY_ERRORS, IDEMPOTENCY_KEY, error_response
from idempotency.decorators import idempotent
from payments import services
from payments.models import Charge, ChargeStatus, Refund
from payments.pagination import MAX_LIMIT, ChargeCursorPagination
from payments.serializers import (
    ChargeCreateSerializer,
    ChargeSerializer,
    RefundCreateSerializer,
    RefundSerializer,
)

LIMIT = OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                         description=f"1-{MAX_LIMIT}, default {ChargeCursorPagination.page_size}.")
CURSOR = OpenApiParameter("cursor", str, description="From a previous page's `next`/`previous`, as is.")
NOT_FOUND = error_response("`not_found`: no such charge of yours.")



class ChargeListCreate(APIView):
    """POST creates a charge; GET lists the consumer's charges, newest first."""

    pagination_class = ChargeCursorPagination

    @extend_schema(
        operation_id="charges_list",
        description="The consumer's charges, newest first, a page at a time (`limit` 1-100, default 20). "
                    "Follow `next` for older charges; the cursor stays valid while new charges arrive.",
        responses={200: ChargeSerializer(many=True),
                   400: error_response("`invalid_request`: bad `limit` or `cursor` (named in `param`)."),
                   401: AUTHENTICATION_ERROR},
        parameters=[LIMIT, CURSOR],
    )
    def get(self, request):
        paginator = self.pagination_class()
        charges = Charge.objects.filter(consumer=request.user).select_related("provider")
        page = paginator.paginate_queryset(charges, request, view=self)
        return paginator.get_paginated_response(ChargeSerializer(page, many=True).data)

    @extend_schema(
        operation_id="charges_create", request=ChargeCreateSerializer, parameters=[IDEMPOTENCY_KEY],
        description="Charge a payment source through a provider. `201` with the charge when it succeeded "
                    "(or is still `pending` at the provider), `402` with the charge when it was declined. "
                    "A retry with the same Idempotency-Key and body returns the stored answer with "
                    "`Idempotent-Replayed: true` and never charges twice.",
        responses={201: ChargeSerializer,
                   402: OpenApiResponse(ChargeSerializer, description="Declined: the charge, `failed`, with "
                                        "`failure_code`/`failure_message`. Stored and replayed."),
                   **IDEMPOTENCY_ERRORS},
    )
    @idempotent
    def post(self, request):
        serializer = ChargeCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        execution = getattr(request, "idempotency", None)
        charge = services.charge_create(
            consumer=request.user, provider_slug=data.get("provider"),
            amount=data["amount"], currency=data["currency"], source=data["source"],
            description=data["description"], metadata=data["metadata"],
            request_key=request.META.get("HTTP_IDEMPOTENCY_KEY", "")[:255], progress=execution,
        )
        code = status.HTTP_402_PAYMENT_REQUIRED if charge.status == ChargeStatus.FAILED else status.HTTP_201_CREATED
        return Response(ChargeSerializer(charge).data, status=code)


class ChargeDetail(APIView):
    """One of the consumer's charges."""

    @extend_schema(operation_id="charges_retrieve",
                   responses={200: ChargeSerializer, 401: AUTHENTICATION_ERROR, 404: NOT_FOUND})
    def get(self, request, charge_id: str):
        charge = Charge.objects.select_related("provider").filter(pk=charge_id, consumer=request.user).first()
        if charge is None:
            raise Http404
        return Response(ChargeSerializer(charge).data)


class RefundCreate(APIView):
    """Refund part or all of what is left of a charge."""

    @extend_schema(
        operation_id="refunds_create", request=RefundCreateSerializer, parameters=[IDEMPOTENCY_KEY],
        description="Refund `amount` (default: everything left) of a succeeded charge. Refunds never add "
                    "up to more than the charge, even when sent at the same time.",
        responses={201: RefundSerializer,
                   402: OpenApiResponse(RefundSerializer, description="The provider refused the refund."),
                   404: NOT_FOUND,
                   **IDEMPOTENCY_ERRORS,
                   400: error_response("`invalid_request`, `charge_not_refundable`, `refund_exceeds_charge`, "
                                       "`idempotency_key_missing`, `idempotency_key_invalid`. Not stored.")},
    )
    @idempotent
    def post(self, request, charge_id: str):
        serializer = RefundCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            refund = services.refund_create(consumer=request.user, charge_id=charge_id,
                                            amount=serializer.validated_data.get("amount"),
                                            progress=getattr(request, "idempotency", None))
        except Charge.DoesNotExist:
            raise Http404 from None
        code = status.HTTP_402_PAYMENT_REQUIRED if refund.status == Refund.Status.FAILED else status.HTTP_201_CREATED
        return Response(RefundSerializer(refund).data, status=code)
