"""Admin for webhook events: browse, read the body, follow the charge, replay."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

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
              "next_attempt_at", "processed_at", "charge_link", "request_id", "replayed_at", "replayed_by",
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

    @admin.display(description="Charge")
    def charge_link(self, obj):
        if not obj.charge_id:
            return "-"
        try:
            url = reverse("admin:payments_charge_change", args=[obj.charge_id])
        except NoReverseMatch:  # the charge admin is not registered
            return obj.charge_id
        return format_html('<a href="{}">{}</a>', url, obj.charge_id)

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

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay_selected(self, request, queryset):
        self._report(request, webhook_replay(events=queryset, by=request.user))

    @admin.action(description="Force replay selected events (even processed)", permissions=["replay"])
    def force_replay_selected(self, request, queryset):
        self._report(request, webhook_replay(events=queryset, force=True, by=request.user))

    @admin.action(description="Replay dead letters among selected", permissions=["replay"])
    def replay_dead_letters(self, request, queryset):
        self._report(request, webhook_replay(events=queryset.filter(status=EventStatus.DEAD), by=request.user))
