"""Small API views that belong to no domain app."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from api.schema import AUTHENTICATION_ERROR


@extend_schema(
    responses={200: inline_serializer("WhoAmI", {"consumer": serializers.CharField(),
                                                 "key_prefix": serializers.CharField()}),
               401: AUTHENTICATION_ERROR},
    description="The consumer the bearer key belongs to: a cheap way to test a key.",
)
@api_view(["GET"])
def whoami(request):
    return Response({"consumer": request.user.name, "key_prefix": request.auth.prefix})
