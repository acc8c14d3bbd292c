"""The API's OpenAPI pieces every app shares: the bearer scheme and the error shape."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from idempotency.conf import MAX_KEY_LENGTH


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

# Every POST under /api/v1/ takes an Idempotency-Key (idempotency/decorators.py).
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    OpenApiParameter.HEADER, required=True,
    description=("Any unique string of 1-255 characters, made by you per logical request. A retry with "
                 "the same key and body gets the stored answer (with `Idempotent-Replayed: true`) and "
                 "never does the work twice. Keys are kept 24 hours."),
)

IDEMPOTENCY_ERRORS = {
    400: error_response("`invalid_request` (the field is named in `param` and the message), "
                        "`idempotency_key_missing`, `idempotency_key_invalid`, `invalid_json`. Not stored: "
                        "fix the request and retry with the same key."),
    401: AUTHENTICATION_ERROR,
    409: error_response("`idempotency_key_in_use`: a request with this key is still executing; retry after "
                        "the `Retry-After` seconds."),
    422: error_response("`idempotency_key_reused`: the key was used with another method, path or body."),
    503: error_response("`provider_unavailable`: the provider could not be reached in time. Not stored: "
                        "retry with the same key; the work resumes with the same provider idempotency key."),
}
