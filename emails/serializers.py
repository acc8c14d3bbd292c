"""Translate between the API's JSON and the services; no domain logic here."""

from __future__ import annotations

from django.core.validators import EmailValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from emails.conf import MAX_BODY_LENGTH, MAX_RECIPIENTS, MAX_SUBJECT_LENGTH
from emails.models import Email, EmailEvent
from payments.serializers import MetadataField, StrictCharField

_validate_address = EmailValidator(message="Enter a valid email address.")


class AddressField(StrictCharField):
    """One plain address (`someone@example.com`), validated as Django's EmailField does (which
    also refuses line breaks, so nothing can be smuggled into a header)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        super().__init__(validators=[_validate_address], **kwargs)


@extend_schema_field({
    "oneOf": [{"type": "string", "format": "email"},
              {"type": "array", "items": {"type": "string", "format": "email"}, "maxItems": MAX_RECIPIENTS}],
    "description": f"An address or a list of addresses ({MAX_RECIPIENTS} recipients at most in to, cc and bcc).",
})
class AddressListField(serializers.Field):
    """An address or a list of addresses; always a list once valid."""

    default_error_messages = {
        "type": "Must be an address or a list of addresses.",
        "too_many": f"At most {MAX_RECIPIENTS} addresses.",
    }

    def to_internal_value(self, data):
        items = [data] if isinstance(data, str) else data
        if not isinstance(items, list):
            self.fail("type")
        if len(items) > MAX_RECIPIENTS:
            self.fail("too_many")
        address = AddressField()
        addresses, errors = [], {}
        for i, item in enumerate(items):
            try:
                addresses.append(address.run_validation(item))
            except serializers.ValidationError as err:
                errors[i] = err.detail
        if errors:
            raise serializers.ValidationError(errors)
        return addresses

    def to_representation(self, value):
        return value


@extend_schema_field({
    "oneOf": [{"type": "string", "format": "email"},
              {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1,
               "maxItems": MAX_RECIPIENTS}],
    "description": f"An address or a non-empty list of addresses ({MAX_RECIPIENTS} recipients at most "
                   "in to, cc and bcc).",
})
class ToField(AddressListField):
    """`to`: like cc and bcc, but never empty (the schema says so too)."""


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": MAX_SUBJECT_LENGTH,
                      "pattern": "^[^\\r\\n]*$", "description": "One line."})
class SubjectField(StrictCharField):
    """One line: it becomes a mail header. (A pattern in the schema; checked here with
    Python's own rules, where `$` would also match before a final newline.)"""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if "\r" in value or "\n" in value:
            raise serializers.ValidationError("Must be one line.")
        return value


class EmailCreateSerializer(serializers.Serializer):
    """The contract's request: `{to, cc?, bcc?, from?, reply_to?, subject, text?, html?, metadata?, provider?}`."""

    to = ToField()
    cc = AddressListField(required=False, default=list)
    bcc = AddressListField(required=False, default=list)
    reply_to = AddressField(required=False, default="")
    subject = SubjectField(max_length=MAX_SUBJECT_LENGTH, min_length=1)
    text = StrictCharField(required=False, default="", allow_blank=True, max_length=MAX_BODY_LENGTH)
    html = StrictCharField(required=False, default="", allow_blank=True, max_length=MAX_BODY_LENGTH)
    metadata = MetadataField(required=False, default=dict)
    provider = StrictCharField(required=False, min_length=1, max_length=50,
                               help_text="Provider slug; see the docs for the default.")

    def get_fields(self):
        fields = super().get_fields()
        # `from` is a Python keyword, so it cannot be a class attribute.
        fields["from"] = AddressField(required=False, default="",
                                      help_text="The sender; default: the provider's configured sender.")
        return fields


    def validate(self, attrs):
        if not attrs["to"]:
            raise serializers.ValidationError({"to": ["At least one recipient."]})
        total = len(attrs["to"]) + len(attrs["cc"]) + len(attrs["bcc"])
        if total > MAX_RECIPIENTS:
            raise serializers.ValidationError({"to": [f"At most {MAX_RECIPIENTS} recipients in to, cc and bcc "
                                                      f"together ({total} given)."]})
        if not attrs["text"] and not attrs["html"]:
            raise serializers.ValidationError({"text": ["Give text, html or both."]})
        return attrs


class EmailEventSerializer(serializers.ModelSerializer):
    time = serializers.DateTimeField(source="occurred_at", read_only=True)

    class Meta:
        model = EmailEvent
        fields = ["type", "time", "recipient_hash"]
        read_only_fields = fields


class EmailSerializer(serializers.ModelSerializer):
    """The contract's email JSON, field for field: no address and no body."""

    provider = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    recipients = serializers.IntegerField(source="recipient_count", read_only=True,
                                          help_text="How many recipients (to, cc and bcc).")
    metadata = MetadataField(read_only=True)
    events = EmailEventSerializer(many=True, read_only=True)

    class Meta:
        model = Email
        fields = ["id", "status", "provider", "provider_message_id", "recipients", "subject", "metadata", "events",
                  "created"]
        read_only_fields = fields
