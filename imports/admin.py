"""Partner imports in the admin: jobs (start, resume, cancel as django-q2 tasks) and the records.

Jobs change only through imports.services; each action needs `imports.run_importjob` and
leaves a history entry on the job it touched. Adding a job is starting an import.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction

from config.readonly_admin import ReadOnlyModelAdmin
from imports.models import ImportJob, JobStatus, PartnerRecord
from imports.services import import_job_cancel, import_job_enqueue, import_job_for


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "provider", "status", "records", "total", "pages", "rate_display", "heartbeat_at",
                    "last_error_short", "created"]
    list_filter = ["status", "provider"]
    list_select_related = ["provider"]
    actions = ["start_selected", "resume_selected", "cancel_selected"]
    fields = ["provider", "page_size", "limit", "status", "cursor", "pages", "records", "total", "rate",
              "last_error", "created", "started_at", "heartbeat_at", "finished_at", "updated"]
    add_fields = ["provider", "page_size", "limit"]

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.fields

    # Adding a job starts it; nothing else about a job is edited by hand.
    def has_add_permission(self, request):
        return self.has_run_permission(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_run_permission(self, request):
        return request.user.has_perm("imports.run_importjob")

    def save_model(self, request, obj, form, change):
        """Start an import: the provider's unfinished job is resumed rather than duplicated."""
        with transaction.atomic():
            job, created = import_job_for(provider=obj.provider, page_size=obj.page_size, limit=obj.limit)
            import_job_enqueue(job=job)
        obj.pk, obj.id = job.pk, job.pk  # the admin's redirect and messages name the real job
        if not created:
            self.message_user(request, f"{obj.provider} already had an unfinished import: it was resumed.",
                              messages.WARNING)

    def log_addition(self, request, obj, message):
        return super().log_addition(request, ImportJob.objects.get(pk=obj.pk), "Started the import")

    @admin.display(description="Rate", ordering="rate")
    def rate_display(self, obj):
        return f"{obj.rate:,.0f}/s"

    @admin.display(description="Last error")
    def last_error_short(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error or "-"

    def _act(self, request, queryset, act, verb: str) -> None:
        done = 0
        for job in queryset:
            with transaction.atomic():
                if act(job):
                    self.log_change(request, job, f"{verb} the import (was {job.status})")
                    done += 1
        skipped = len(queryset) - done
        self.message_user(request, f"{verb} {done} import(s)" + (f"; skipped {skipped}." if skipped else "."),
                          messages.SUCCESS if done else messages.WARNING)

    @admin.action(description="Start selected providers' imports again from the first page", permissions=["run"])
    def start_selected(self, request, queryset):
        def start(job):
            new, _ = import_job_for(provider=job.provider, page_size=job.page_size, limit=job.limit, restart=True)
            return import_job_enqueue(job=new)

        self._act(request, queryset, start, "Restarted")

    @admin.action(description="Resume selected imports from their cursor", permissions=["run"])
    def resume_selected(self, request, queryset):
        self._act(request, queryset.exclude(status=JobStatus.COMPLETED),
                  lambda job: import_job_enqueue(job=job), "Resumed")

    @admin.action(description="Cancel selected imports", permissions=["run"])
    def cancel_selected(self, request, queryset):
        self._act(request, queryset, lambda job: import_job_cancel(job=job), "Cancelled")


@admin.register(PartnerRecord)
class PartnerRecordAdmin(ReadOnlyModelAdmin):
    """Imported records, read-only: they change only by the next import."""

    list_display = ["external_id", "provider", "name", "country", "updated_at", "imported_at"]
    list_filter = ["provider", "country"]
    search_fields = ["external_id", "name"]
    list_select_related = ["provider"]
    show_full_result_count = False  # a million rows: no COUNT(*) on every page
