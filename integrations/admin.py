"""Admin for providers and credentials. A credential's value can be set, never displayed."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages

from integrations.credentials import credential_rotate
from integrations.models import Credential, Provider


class NewCredentialForm(forms.ModelForm):
    """Adds a credential version; the plaintext field is write-only and never re-rendered."""

    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        strip=False,
        help_text="Stored encrypted; it cannot be shown again.",
    )
    grace_minutes = forms.IntegerField(
        min_value=0, required=False, initial=0,
        help_text="Minutes the previous value stays valid (for webhook secrets in flight).",
    )

    class Meta:
        model = Credential
        fields = ["environment", "purpose"]

    def clean_value(self):
        value = self.cleaned_data["value"]
        if not value or value != value.strip():
            raise forms.ValidationError("Enter the value without surrounding spaces.")
        return value


class CredentialInline(admin.TabularInline):
    """Existing versions read-only (fingerprint, when set, validity); new ones via the form."""

    model = Credential
    extra = 0
    can_delete = False
    fields = ["environment", "purpose", "version", "fingerprint", "key_id", "created", "active_until"]
    readonly_fields = ["environment", "purpose", "version", "fingerprint", "key_id", "created"]
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


class NewCredentialInline(admin.TabularInline):
    model = Credential
    form = NewCredentialForm
    extra = 0
    verbose_name = "new credential value"
    verbose_name_plural = "Set or replace a credential (the previous value is retired)"

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "environment", "enabled", "base_url"]
    list_filter = ["kind", "environment", "enabled"]
    search_fields = ["slug", "name", "base_url"]
    inlines = [CredentialInline, NewCredentialInline]
    fieldsets = [
        (None, {"fields": ["slug", "name", "kind", "base_url", "environment", "enabled"]}),
        ("Timeouts and retries", {"fields": ["connect_timeout", "read_timeout", "deadline",
                                             "max_attempts", "backoff_base", "backoff_max"]}),
        ("Circuit breaker and rate limit", {"fields": ["circuit_failure_threshold", "circuit_open_seconds",
                                                       "rate_limit_requests", "rate_limit_period"]}),
        ("Caching and webhooks", {"fields": ["cache_ttl", "webhook_tolerance"]}),
    ]

    def save_formset(self, request, form, formset, change):
        if not isinstance(formset.form, type) or not issubclass(formset.form, NewCredentialForm):
            return super().save_formset(request, form, formset, change)
        for inline_form in formset.forms:
            if not inline_form.has_changed() or not inline_form.cleaned_data:
                continue
            data = inline_form.cleaned_data
            credential = credential_rotate(
                provider=form.instance,
                environment=data["environment"],
                purpose=data["purpose"],
                value=data["value"],
                grace=timedelta(minutes=data.get("grace_minutes") or 0),
            )
            messages.info(request, f"Stored {credential} (fingerprint {credential.fingerprint}).")
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    """Browse and expire credentials; values are set from the provider page or the command."""

    list_display = ["provider", "environment", "purpose", "version", "fingerprint", "key_id",
                    "created", "active_until"]
    list_filter = ["environment", "purpose", "provider__kind", "key_id"]
    search_fields = ["provider__slug", "provider__name", "fingerprint"]
    fields = ["provider", "environment", "purpose", "version", "fingerprint", "key_id", "created", "active_until"]
    readonly_fields = ["provider", "environment", "purpose", "version", "fingerprint", "key_id", "created"]

    def has_add_permission(self, request):
        return False


