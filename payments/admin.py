"""Charges in the admin: refunds inline, the outbound key and the status history, all read-only.

Money moves through the API and the provider only; the admin is for looking, so no
field that the provider owns can be edited here.
"""

from django.contrib import admin

from config.readonly_admin import ReadOnlyInline, ReadOnlyModelAdmin
from payments.models import Charge, ChargeStatusChange, Refund


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ["id", "amount", "status", "provider_refund_id", "outbound_idempotency_key", "failure_code",
              "created", "updated"]
    readonly_fields = fields


class StatusHistoryInline(ReadOnlyInline):
    model = ChargeStatusChange
    verbose_name_plural = "Status history"
    fields = ["at", "from_status", "to_status", "amount_refunded", "source"]
    readonly_fields = fields


@admin.register(Charge)
class ChargeAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "consumer", "provider", "amount", "currency", "status", "amount_refunded", "created"]
    list_filter = ["status", "provider", "currency", "consumer", "created"]
    search_fields = ["id", "provider_charge_id", "outbound_idempotency_key", "request_key"]
    date_hierarchy = "created"
    list_select_related = ["consumer", "provider"]
    inlines = [RefundInline, StatusHistoryInline]
    fieldsets = [
        (None, {"fields": ["id", "consumer", "provider", "amount", "currency", "status", "amount_refunded"]}),
        ("Provider", {"fields": ["provider_charge_id", "outbound_idempotency_key", "failure_code",
                                 "failure_message", "completion_attempts"]}),
        ("Request", {"fields": ["request_key", "source", "description", "metadata", "created", "updated"]}),
    ]


@admin.register(Refund)
class RefundAdmin(ReadOnlyModelAdmin):
    """All refunds across charges, to find pending or failed ones; read-only like charges."""

    list_display = ["id", "charge", "amount", "status", "failure_code", "created", "updated"]
    list_filter = ["status", "charge__provider", "created"]
    search_fields = ["id", "charge__id", "provider_refund_id", "outbound_idempotency_key"]
    date_hierarchy = "created"
    list_select_related = ["charge"]
