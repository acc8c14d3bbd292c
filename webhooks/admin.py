"""Admin for webhook events (browse, read the body, follow the charge, replay) and for their task queue."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction
from django.utils.html import format_html

# Imported first so that its registrations exist when ours replace them below.
from django_q.admin import FailAdmin, TaskAdmin
from django_q.admin import resubmit_task as django_q_resubmit
from django_q.models import Failure, Success

from webhooks.models import EventStatus, WebhookEvent
from webhooks.replay import ReplayOutcome, webhook_replay


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "provider", "type", "status", "attempts", "received_at", "processed_at",
                    "replay_count")
    list_filter = ("status", "provider", "type")
    search_fields = ("event_id",)
    date_hierarchy = "received_at"
    list_select_related = ("provider",)
    actions = ("replay_selected", "force_replay_selected", "replay_dead_letters")
    fields = ("provider", "event_id", "type", "status", "attempts", "received_at", "enqueued_at", "claimed_at",
              "next_attempt_at", "processed_at", "subject_link", "request_id", "replayed_at", "replayed_by",
              "replay_count", "last_error", "last_traceback_block", "headers", "body_purged_at", "body_block")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # events only come from providers

    def has_change_permission(self, request, obj=None):
        return False  # read-only: state changes go through replay

    def has_replay_permission(self, request):
        return request.user.has_perm("webhooks.replay_webhookevent")

    @admin.display(description="Raw body")
    def body_block(self, obj):
        if obj.body_purged_at:
            return "(purged by retention)"
        return format_html('<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto">{}</pre>',
                           obj.body_text())

    @admin.display(description="Last traceback")
    def last_traceback_block(self, obj):
        return format_html("<pre>{}</pre>", obj.last_traceback) if obj.last_traceback else "-"

    @admin.display(description="Subject")
    def subject_link(self, obj):
        """What the event's handler touched (a charge, an email), linked when it has an admin page."""
        if not obj.subject_id:
            return "-"
        label = f"{obj.subject_type} {obj.subject_id}"
        url = obj.subject_admin_url()
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    def _report(self, request, outcome: ReplayOutcome) -> None:
        if outcome.enqueued:
            self.message_user(request, f"Replayed {len(outcome.enqueued)} event(s): they are queued for processing.",
                              messages.SUCCESS)
        if outcome.skipped_final:
            self.message_user(request, f"Skipped {len(outcome.skipped_final)} processed/ignored event(s): "
                                       "use “Force replay” to run them again.", messages.WARNING)
        if outcome.skipped_processing:
            self.message_user(request, f"Skipped {len(outcome.skipped_processing)} event(s) being processed "
                                       "right now.", messages.WARNING)
        if outcome.skipped_purged:
            self.message_user(request, f"Skipped {len(outcome.skipped_purged)} event(s) whose body was purged.",
                              messages.WARNING)
        if not any((outcome.enqueued, outcome.skipped_final, outcome.skipped_processing, outcome.skipped_purged)):
            self.message_user(request, "Nothing to replay.", messages.INFO)

    def _replay(self, request, events, *, force: bool = False) -> None:
        """Replay, and leave one history entry per event replayed, in the same transaction."""
        with transaction.atomic():
            outcome = webhook_replay(events=events, force=force, by=request.user)
            by_status = defaultdict(list)
            for replayed in outcome.enqueued:
                by_status[replayed.previous_status].append(replayed.pk)
            for status, pks in by_status.items():
                LogEntry.objects.log_actions(
                    user_id=request.user.pk, queryset=WebhookEvent.objects.filter(pk__in=pks), action_flag=CHANGE,
                    change_message=f"{'Force replayed' if force else 'Replayed'} the event (was {status})")
        self._report(request, outcome)

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay_selected(self, request, queryset):
        self._replay(request, queryset)

    @admin.action(description="Force replay selected events (even processed)", permissions=["replay"])
    def force_replay_selected(self, request, queryset):
        self._replay(request, queryset, force=True)

    @admin.action(description="Replay dead letters among selected", permissions=["replay"])
    def replay_dead_letters(self, request, queryset):
        self._replay(request, queryset.filter(status=EventStatus.DEAD))


class ResubmitNeedsPermission:
    """django-q2 offers "Resubmit selected tasks" to anyone who may view tasks, yet a task run
    again repeats its work (processing an event, purging bodies): here it takes the change
    permission and leaves a history entry."""

    actions = ["resubmit_task"]

    def has_resubmit_permission(self, request):
        return self.has_change_permission(request)

    @admin.action(description=django_q_resubmit.short_description, permissions=["resubmit"])
    def resubmit_task(self, request, queryset):
        for task in queryset:
            with transaction.atomic():
                # Logged first: resubmitting a failed task deletes its row.
                self.log_change(request, task, "Resubmitted the task to the queue")
                django_q_resubmit(self, request, [task])


class GuardedTaskAdmin(ResubmitNeedsPermission, TaskAdmin):
    pass


class GuardedFailAdmin(ResubmitNeedsPermission, FailAdmin):
    def has_resubmit_permission(self, request):
        return super().has_resubmit_permission(request) and self.has_delete_permission(request)


# The queue behind webhook processing is django-q2's; its admin is guarded here.
for _model, _model_admin in ((Success, GuardedTaskAdmin), (Failure, GuardedFailAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, _model_admin)
