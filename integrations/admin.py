"""Admin for providers and credentials. A credential's value can be set, never displayed."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from integrations.circuit import circuit_reset, circuit_status, circuit_statuses
from integrations.credentials import check_credential_value, credential_rotate
from integrations.kinds import get_kind
from integrations.models import Credential, OutboundCall, Provider

# A grace period is for deliveries in flight, not a second permanent secret (90 days).
MAX_GRACE_MINUTES = 90 * 24 * 60


class NewCredentialForm(forms.ModelForm):
    """Adds a credential version; the plaintext field is write-only and never re-rendered."""

    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        strip=False,
        help_text="Stored encrypted; it cannot be shown again.",
    )
    grace_minutes = forms.IntegerField(
        min_value=0, max_value=MAX_GRACE_MINUTES, required=False, initial=0,
        help_text="Minutes the previous value stays valid (for webhook secrets in flight).",
    )

    class Meta:
        model = Credential
        fields = ["environment", "purpose"]

    def clean_value(self):
        value = self.cleaned_data["value"]
        try:
            check_credential_value(value)
        except ValueError as err:
            raise forms.ValidationError(str(err).capitalize() + ".") from None
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
    list_display = ["slug", "name", "kind", "environment", "enabled", "base_url", "circuit"]
    list_filter = ["kind", "environment", "enabled"]
    search_fields = ["slug", "name", "base_url"]
    inlines = [CredentialInline, NewCredentialInline]
    actions = ["reset_circuits"]
    readonly_fields = ["circuit_detail", "recent_calls"]
    fieldsets = [
        (None, {"fields": ["slug", "name", "kind", "base_url", "environment", "enabled"]}),
        ("Health", {"fields": ["circuit_detail", "recent_calls"]}),
        ("Authentication", {"fields": ["auth_scheme", "auth_header_name", "api_version", "api_version_header",
                                       "oauth_token_url", "oauth_scope"]}),
        ("Timeouts and retries", {"fields": ["connect_timeout", "read_timeout", "deadline",
                                             "max_attempts", "backoff_base", "backoff_max"]}),
        ("Circuit breaker and rate limit", {"fields": ["circuit_failure_threshold", "circuit_open_seconds",
                                                       "rate_limit_requests", "rate_limit_period"]}),
        ("Caching and webhooks", {"fields": ["cache_ttl", "webhook_tolerance"]}),
        ("Email", {"fields": ["email_from"]}),
    ]


    def save_model(self, request, obj, form, change):
        if not change:
            applied = get_kind(obj.kind).apply_provider_defaults(obj)
            if applied:
                messages.info(request, f"Applied the {obj.kind} kind's defaults: "
                                       + ", ".join(f"{name} = {getattr(obj, name)}" for name in applied) + ".")
        super().save_model(request, obj, form, change)

    @method_decorator(sensitive_post_parameters())
    def changeform_view(self, request, *args, **kwargs):
        # The form carries credential values: error reports must never show the POST data.
        return super().changeform_view(request, *args, **kwargs)

    def changelist_view(self, request, extra_context=None):
        self._statuses = None  # one shared-state read per page, not one per row
        return super().changelist_view(request, extra_context)

    @admin.display(description="circuit")
    def circuit(self, obj: Provider) -> str:
        if getattr(self, "_statuses", None) is None:
            self._statuses = circuit_statuses(providers=Provider.objects.all())
        status = self._statuses.get(obj.slug) or circuit_status(provider=obj)
        return _circuit_text(status, short=True)

    @admin.display(description="circuit breaker")
    def circuit_detail(self, obj: Provider) -> str:
        if obj.pk is None:
            return "-"
        return _circuit_text(circuit_status(provider=obj), short=False)

    @admin.display(description="last hour")
    def recent_calls(self, obj: Provider) -> str:
        """Calls, error rate and median latency over the last hour, from the call records."""
        if obj.pk is None:
            return "-"
        since = timezone.now() - timedelta(hours=1)
        rows = list(OutboundCall.objects.filter(provider=obj, created__gte=since)
                    .order_by("-created").values_list("ok", "latency_ms")[:5000])
        if not rows:
            return "no calls"
        failed = sum(1 for ok, _ in rows if not ok)
        median = statistics.median(latency for _, latency in rows)
        return f"{len(rows)} calls, {failed / len(rows):.0%} failed, median latency {median:.0f} ms"

    @admin.action(description="Reset the circuit breaker of the selected providers", permissions=["change"])
    def reset_circuits(self, request, queryset):
        providers = list(queryset)
        for provider in providers:
            # Closing an open circuit sends traffic to a provider that was failing: say who did it.
            was = circuit_status(provider=provider).state
            circuit_reset(provider=provider)
            self.log_change(request, provider, f"Reset the circuit breaker (was {was})")
        messages.success(request, f"Closed the circuit of {len(providers)} provider(s).")

    @method_decorator(sensitive_variables("data"))
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


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "never"


def _circuit_text(status, *, short: bool) -> str:
    if short:
        return f"{status.state} ({status.failures} failing)" if status.failures else status.state
    text = (f"{status.state}; {status.failures} consecutive failure(s); last change {_when(status.changed_at)}; "
            f"{status.total_failures} failures and {status.total_opens} opening(s) in total")
    if status.reopens_at and status.state != "closed":
        text += f"; probe allowed from {_when(status.reopens_at)}"
    if status.last_error:
        text += f"; last error {status.last_error}"
    return text


@admin.register(OutboundCall)
class OutboundCallAdmin(admin.ModelAdmin):
    """Calls made to providers: read-only, filterable; headers, bodies and query values are never kept."""

    list_display = ["created", "provider", "operation", "method", "path", "ok", "status", "error_code",
                    "attempts", "latency_ms", "request_id"]
    list_filter = ["ok", "error_code", "method", "provider", "operation", ("created", admin.DateFieldListFilter)]
    search_fields = ["request_id", "operation", "path"]
    date_hierarchy = "created"
    list_select_related = ["provider"]
    readonly_fields = [f.name for f in OutboundCall._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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


