"""What the addresses API reads and writes (the schema too); validation only, no work."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from addresses.conf import MAX_ADDRESS_LENGTH, MAX_BATCH_ADDRESSES
from addresses.models import BatchJob
from addresses.normalize import normalize_address

# "Something besides spaces and commas", spelled out: JSON Schema's \s (ECMA) is not Python's,
# and NFKC turns the full-width and small commas into commas.
NOT_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000,\ufe10\ufe50\uff0c]"


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": MAX_ADDRESS_LENGTH, "pattern": NOT_BLANK,
                      "description": "1-500 characters, not only spaces and commas."})
class AddressField(serializers.CharField):
    """An address: 1-500 characters with something besides spaces and commas (its
    normalised form, the cache key, is not empty)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=MAX_ADDRESS_LENGTH, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if "\x00" in value:
            raise serializers.ValidationError("Must not contain NUL characters.")
        if not normalize_address(value):
            raise serializers.ValidationError("Must not be blank.")
        return value


class VerifyQuerySerializer(serializers.Serializer):
    address = AddressField(help_text="The address to verify, 1-500 characters.")
    provider = serializers.SlugField(required=False, help_text="A geocoding provider's slug (default: the only one).")


class PlaceSerializer(serializers.Serializer):
    formatted = serializers.CharField()
    lat = serializers.FloatField()
    lon = serializers.FloatField()
    components = serializers.DictField(child=serializers.CharField(),
                                       help_text="The provider's address parts (house_number, road, city, ...).")
    provider = serializers.CharField(help_text="The provider's slug.")


class VerificationSerializer(serializers.Serializer):
    query = serializers.CharField(help_text="The address as sent.")
    normalized = serializers.CharField(help_text="NFKC, trimmed, case-folded, whitespace and commas collapsed.")
    found = serializers.BooleanField(help_text="False when the provider knows no such address (not an error).")
    result = PlaceSerializer(allow_null=True)
    cached = serializers.BooleanField(help_text="Answered from the cache, without calling the provider.")


class BatchCreateSerializer(serializers.Serializer):
    addresses = serializers.ListField(child=AddressField(), min_length=1, max_length=MAX_BATCH_ADDRESSES,
                                      help_text=f"1-{MAX_BATCH_ADDRESSES:,} addresses, each 1-500 characters.")
    provider = serializers.SlugField(required=False)


class BatchJobSerializer(serializers.ModelSerializer):
    provider = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = BatchJob
        fields = ["id", "status", "total", "done", "unique", "provider", "last_error", "created", "finished"]
        read_only_fields = fields


class BatchResultSerializer(VerificationSerializer):
    position = serializers.IntegerField(help_text="0-based line of the input.")
    status = serializers.ChoiceField(["done", "pending"], help_text="`pending`: not fetched yet.")
    found = serializers.BooleanField(allow_null=True)
    cached = serializers.BooleanField(allow_null=True)


class BatchResultsPageSerializer(serializers.Serializer):
    results = BatchResultSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, as is; null on the last one.")
