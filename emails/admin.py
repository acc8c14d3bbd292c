"""Emails in the admin: status filters, events and history inline, and "Resend" for `unknown` ones.

No address is ever shown (recipients appear as keyed hashes, emails.privacy) and no body once
the provider took the message. Everything is read-only: the only way to change an email here
is the explicit resend of one whose delivery is unknown, which needs `emails.resend_email`,
asks for confirmation and leaves a history entry.

Resend is a button on the email's page rather than a changelist action: staff should look at
the email (its attempts and failure) before sending it a second time, one at a time.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from config.readonly_admin import ReadOnlyInline, ReadOnlyModelAdmin
from emails.errors import EmailNotResendable
from emails.models import Email, EmailEvent, EmailStatus, EmailStatusChange
from emails.services import email_resend

# Bodies are shown only while they may still be needed to send (or resend) the email.
_BODY_VISIBLE = {EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.UNKNOWN}


class EventInline(ReadOnlyInline):
    model = EmailEvent
    fields = ["occurred_at", "type", "recipient_hash", "provider_event_id", "created"]
    readonly_fields = fields


class StatusHistoryInline(ReadOnlyInline):
    model = EmailStatusChange
    verbose_name_plural = "Status history and send attempts"
    fields = ["at", "from_status", "to_status", "source"]
    readonly_fields = fields


@admin.register(Email)
class EmailAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "consumer", "provider", "status", "recipient_count", "first_recipient", "attempts",
                    "resends", "created"]
    list_filter = ["status", "provider", "consumer", "created"]
    search_fields = ["=id", "=provider_message_id", "=outbound_idempotency_key", "=request_key"]
    date_hierarchy = "created"
    list_select_related = ["consumer", "provider"]
    inlines = [EventInline, StatusHistoryInline]
    fieldsets = [
        (None, {"fields": ["id", "consumer", "provider", "status", "subject", "metadata", "created", "updated"]}),
        ("Recipients", {"fields": ["recipient_count", "recipient_hash_list"]}),
        ("Sending", {"fields": ["attempts", "resends", "next_attempt_at", "claimed_at", "sent_at",
                                "provider_message_id", "outbound_idempotency_key", "request_key", "failure_code",
                                "failure_message"]}),
        ("Content", {"fields": ["content_purged_at", "text_body", "html_body"]}),
    ]
    readonly_extra = ["recipient_hash_list", "text_body", "html_body"]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *self.readonly_extra]

    @admin.display(description="Recipient (hash)")
    def first_recipient(self, obj):
        hashes = obj.recipient_hashes or []
        return f"{hashes[0]} +{len(hashes) - 1}" if len(hashes) > 1 else (hashes[0] if hashes else "-")

    @admin.display(description="Recipient hashes")
    def recipient_hash_list(self, obj):
        return ", ".join(obj.recipient_hashes or []) or "-"

    def _body(self, obj, text: str) -> str:
        if obj.content_purged_at or obj.status not in _BODY_VISIBLE:
            return "(not shown: deleted or no longer needed once the provider took the email)"
        return text or "-"

    @admin.display(description="Text body")
    def text_body(self, obj):
        return self._body(obj, obj.text)

    @admin.display(description="HTML body (source)")
    def html_body(self, obj):
        return self._body(obj, obj.html)

    # --- resend -------------------------------------------------------------------------
    def has_resend_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("emails.resend_email")

    def get_urls(self):
        resend = path("<path:object_id>/resend/", self.admin_site.admin_view(self.resend_view),
                      name="emails_email_resend")
        return [resend, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if (obj is not None and obj.status == EmailStatus.UNKNOWN and obj.content_purged_at is None
                and self.has_resend_permission(request, obj)):
            context["resend_url"] = reverse("admin:emails_email_resend", args=[obj.pk])
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def resend_view(self, request, object_id: str):
        """POST only: queue a new send attempt of an unknown email and log it in its history."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_resend_permission(request):
            raise PermissionDenied
        email = Email.objects.filter(pk=object_id).first()
        if email is None:
            raise Http404
        try:
            email = email_resend(email_id=email.pk, by=f"admin:{request.user.get_username()}")
        except EmailNotResendable as err:
            self.message_user(request, str(err.detail), messages.ERROR)
        else:
            self.log_change(request, email, f"Resent the email (was unknown; resend {email.resends})")
            self.message_user(request, "Queued a new send attempt.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:emails_email_change", args=[email.pk]))
