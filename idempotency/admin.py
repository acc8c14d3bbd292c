"""Idempotency records in the admin: read-only, filterable, for support and debugging."""

from django.contrib import admin

from config.readonly_admin import ReadOnlyModelAdmin
from idempotency.models import IdempotencyRecord


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyModelAdmin):
    list_display = ["key", "consumer", "method", "path", "recovery_point", "response_status",
                    "locked_at", "created"]
    list_filter = ["recovery_point", "response_status", "method", "consumer", "created"]
    search_fields = ["key", "path", "resource_id"]
    date_hierarchy = "created"
    list_select_related = ["consumer"]
