"""Translate between the API's JSON and the services; no domain logic here."""

from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payments.conf import (
    METADATA_MAX_KEY_LENGTH,
    METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_LENGTH,
    payment_settings,
)
from payments.currencies import ISO_4217
from payments.models import Charge, Refund


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: not "100", not 100.0, not true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string, taken as sent: DRF's CharField would turn 0 or 1.5 into "0" or "1.5", and
    trim whitespace, so that " " (or a lone no-break space) was refused as blank although the
    schema's minLength allows it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def known_currency(value: str) -> None:
    if value.upper() not in ISO_4217:
        raise serializers.ValidationError(f"{value!r} is not an ISO 4217 currency code.")


class CurrencyField(StrictCharField):
    """Three ASCII letters naming an ISO 4217 code, in any case; lower case once valid.

    ASCII is checked first, on the value as sent: str.upper() turns "u\u017fd" into "USD" and
    str.lower() turns a Kelvin sign (U+212A) into "k", so a lookup after either would pass a
    look-alike and store (and send) what the caller wrote.
    """

    def __init__(self, **kwargs):
        # \Z, not $, which also matches before a final newline; the schema shows ^[A-Za-z]{3}$.
        letters = RegexValidator(r"^[A-Za-z]{3}\Z", message="Must be three letters, e.g. usd.")
        super().__init__(validators=[letters, known_currency], **kwargs)

    def run_validation(self, data=serializers.empty):
        return super().run_validation(data).lower()


@extend_schema_field({
    "type": "object",
    "additionalProperties": {"type": "string", "maxLength": METADATA_MAX_VALUE_LENGTH},
    "maxProperties": METADATA_MAX_KEYS,
    "description": f"Your own string values by key (keys of 1 to {METADATA_MAX_KEY_LENGTH} characters).",
})
class MetadataField(serializers.JSONField):
    """A flat object of string values with bounded keys, values and size."""

    default_error_messages = {"flat": "Must be an object whose values are all strings."}

    def to_internal_value(self, data):
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            self.fail("flat")
        if len(data) > METADATA_MAX_KEYS:
            raise serializers.ValidationError(f"At most {METADATA_MAX_KEYS} keys.")
        for key, value in data.items():
            if not key or len(key) > METADATA_MAX_KEY_LENGTH:
                raise serializers.ValidationError(f"Keys must be 1 to {METADATA_MAX_KEY_LENGTH} characters.")
            if len(value) > METADATA_MAX_VALUE_LENGTH:
                raise serializers.ValidationError(
                    f"Value of {key!r} is longer than {METADATA_MAX_VALUE_LENGTH} characters.")
        return dict(data)


class ChargeCreateSerializer(serializers.Serializer):
    amount = StrictIntegerField(min_value=1, help_text="Minor units (e.g. cents), a positive integer.")
    currency = CurrencyField(help_text="ISO 4217 code, e.g. usd or EUR; answered in lower case.")
    # min_length=1 states in the schema what CharField's allow_blank=False already refuses.
    source = StrictCharField(min_length=1, max_length=255,
                             help_text="A payment token from the provider, e.g. tok_visa.")
    provider = StrictCharField(required=False, min_length=1, max_length=50,
                               help_text="Provider slug; see the docs for the default.")
    description = StrictCharField(required=False, allow_blank=True, max_length=1000, default="")
    metadata = MetadataField(required=False, default=dict)

    def get_fields(self):
        fields = super().get_fields()
        # PAYMENTS_MAX_AMOUNT is read per instance, so validation and the schema's `maximum` follow it.
        fields["amount"] = StrictIntegerField(min_value=1, max_value=int(payment_settings.MAX_AMOUNT),
                                              help_text=fields["amount"].help_text)
        return fields


class RefundCreateSerializer(serializers.Serializer):
    amount = StrictIntegerField(min_value=1, required=False,
                                help_text="Minor units; omitted: everything that is left.")


class ChargeSerializer(serializers.ModelSerializer):
    """The contract's charge JSON, field for field."""

    provider = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    metadata = MetadataField(read_only=True)

    class Meta:
        model = Charge
        fields = ["id", "amount", "currency", "status", "amount_refunded", "provider", "provider_charge_id",
                  "failure_code", "failure_message", "description", "metadata", "created"]
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    charge = serializers.CharField(source="charge_id", read_only=True)

    class Meta:
        model = Refund
        fields = ["id", "charge", "amount", "status", "failure_code", "failure_message", "created"]
        read_only_fields = fields
