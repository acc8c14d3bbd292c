"""An admin for records that only the service writes: browse, filter and search, nothing else."""

from django.contrib import admin


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """No add, change or delete: money and idempotency records change only through the
    service (deleting one could let a retry run twice), and leave only through retention."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Related rows shown on a read-only page (refunds, status history, events): no add,
    change or delete there either."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
