"""The API's OpenAPI pieces every app shares: the bearer scheme and the error shape."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerKeyAuthentication"
    name = "bearerApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from the admin or `manage.py create_api_key`: "
            "`Authorization: Bearer pgw_...`.",
        }


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.CharField()
    message = serializers.CharField()
    param = serializers.CharField(required=False, help_text="The field at fault, for validation errors.")


class ErrorSerializer(serializers.Serializer):
    """The contract's error shape (made in api/exceptions.py), for the schema."""

    error = ErrorDetailSerializer()


def error_response(description: str) -> OpenApiResponse:
    """A documented error answer; the description names the `type`s it can carry."""
    return OpenApiResponse(ErrorSerializer, description=description)


# Every /api/v1/ view needs a key, so every operation documents this answer.
AUTHENTICATION_ERROR = error_response(
    "`authentication_required` / `authentication_failed`: send `Authorization: Bearer <api key>`.")
