"""Batch jobs in the admin: progress at a glance, read-only (jobs change only through the API and workers)."""

from django.contrib import admin

from addresses.models import BatchJob
from config.readonly_admin import ReadOnlyModelAdmin


@admin.register(BatchJob)
class BatchJobAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "consumer", "provider", "status", "progress_display", "total", "unique", "runs",
                    "created", "finished"]
    list_filter = ["status", "provider", "created"]
    search_fields = ["id"]
    date_hierarchy = "created"
    list_select_related = ["consumer", "provider"]

    @admin.display(description="progress")
    def progress_display(self, obj: BatchJob) -> str:
        return f"{obj.done:,}/{obj.total:,} ({obj.progress:.0%})"
