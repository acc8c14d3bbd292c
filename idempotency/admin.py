"""Idempotency records in the admin: read-only, filterable, for support and debugging."""

from django.contrib import admin

from idempotency.models import IdempotencyRecord


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["key", "consumer", "method", "path", "recovery_point", "response_status",
                    "locked_at", "created"]
    list_filter = ["recovery_point", "response_status", "method", "consumer", "created"]
    search_fields = ["key", "path", "resource_id"]
    date_hierarchy = "created"
    list_select_related = ["consumer"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting a record would let a retry of a finished request run (and charge) again.
        # Records leave only through the retention purge.
        return False
