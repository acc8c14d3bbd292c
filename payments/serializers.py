"""Translate between the API's JSON and the services; no domain logic here."""

from __future__ import annotations

from rest_framework import serializers

from payments import conf
from payments.currencies import ISO_4217
from payments.models import Charge, Refund


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: not "100", not 100.0, not true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class MetadataField(serializers.JSONField):
    """A flat object of string values with bounded keys, values and size."""

    default_error_messages = {"flat": "Must be an object whose values are all strings."}

    def to_internal_value(self, data):
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            self.fail("flat")
        if len(data) > conf.METADATA_MAX_KEYS:
            raise serializers.ValidationError(f"At most {conf.METADATA_MAX_KEYS} keys.")
        for key, value in data.items():
            if not key or len(key) > conf.METADATA_MAX_KEY_LENGTH:
                raise serializers.ValidationError(f"Keys must be 1 to {conf.METADATA_MAX_KEY_LENGTH} characters.")
            if len(value) > conf.METADATA_MAX_VALUE_LENGTH:
                raise serializers.ValidationError(
                    f"Value of {key!r} is longer than {conf.METADATA_MAX_VALUE_LENGTH} characters.")
        return dict(data)


class ChargeCreateSerializer(serializers.Serializer):
    amount = StrictIntegerField(min_value=1, help_text="Minor units (e.g. cents), a positive integer.")
    currency = serializers.CharField(help_text="ISO 4217 code, e.g. usd or EUR.")
    source = serializers.CharField(max_length=255, help_text="A payment token from the provider, e.g. tok_visa.")
    provider = serializers.CharField(required=False, max_length=50,
                                     help_text="Provider slug; see the docs for the default.")
    description = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")
    metadata = MetadataField(required=False, default=dict)

    def validate_amount(self, value: int) -> int:
        if value > conf.max_amount():
            raise serializers.ValidationError(f"Must be at most {conf.max_amount()}.")
        return value

    def validate_currency(self, value: str) -> str:
        if value.upper() not in ISO_4217:
            raise serializers.ValidationError(f"{value!r} is not an ISO 4217 currency code.")
        return value.lower()


class RefundCreateSerializer(serializers.Serializer):
    amount = StrictIntegerField(min_value=1, required=False,
                                help_text="Minor units; omitted: everything that is left.")


class ChargeSerializer(serializers.ModelSerializer):
    """The contract's charge JSON, field for field."""

    provider = serializers.SlugRelatedField(slug_field="slug", read_only=True)

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


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.CharField()
    message = serializers.CharField()
    param = serializers.CharField(required=False, help_text="The field at fault, for validation errors.")


class ErrorSerializer(serializers.Serializer):
    """The contract's error shape, for the schema."""

    error = ErrorDetailSerializer()
