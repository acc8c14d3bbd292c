"""Admin for consumers and keys: keys can be revoked; their value is never stored."""

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone

from api.models import ApiKey, Consumer, api_key_create


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ["prefix", "label", "created", "last_used_at", "revoked_at"]
    # revoked_at too: clearing it here would bring a revoked key back to life. Revoking goes
    # through the API keys list's action, which checks its permission and logs it.
    readonly_fields = ["prefix", "created", "last_used_at", "revoked_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Consumer)
class ConsumerAdmin(admin.ModelAdmin):
    list_display = ["name", "created"]
    search_fields = ["name"]
    inlines = [ApiKeyInline]
    actions = ["create_key"]

    def has_add_key_permission(self, request):
        # A new key lets its holder act as the consumer: it takes adding keys, not editing consumers.
        return request.user.has_perm("api.add_apikey")

    @admin.action(description="Create a new API key (shown once)", permissions=["add_key"])
    def create_key(self, request, queryset):
        for consumer in queryset:
            with transaction.atomic():  # no key without the history entry that says who made it
                key, raw = api_key_create(consumer_name=consumer.name, label=f"admin:{request.user}")
                # The prefix identifies the key; the raw value must never reach the log.
                self.log_change(request, consumer, f"Created API key {key.prefix}… (label {key.label})")
            # Shown once, to the staff member who asked; it is not stored anywhere.
            messages.warning(request, f"New key for {consumer}: {raw} (copy it now; it will not be shown again)")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "consumer", "label", "created", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "consumer__name", "label"]
    readonly_fields = ["consumer", "prefix", "created", "last_used_at", "revoked_at"]
    fields = ["consumer", "label", "prefix", "created", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        now, count = timezone.now(), 0
        with transaction.atomic():
            for key in queryset.filter(revoked_at__isnull=True):
                # Conditional: a key revoked meanwhile keeps its first revocation and history entry.
                if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now):
                    self.log_change(request, key, "Revoked API key")
                    count += 1
        messages.success(request, f"Revoked {count} key(s).")


# django-axes' own admin offers "Clean up expired attempts" to anyone who can view
# attempts, and it fails outside a login request. Axes already drops expired attempts at
# every login; a lock is lifted by deleting its row (delete permission) or with
# `manage.py axes_reset_username`.
admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class GuardedAccessAttemptAdmin(AccessAttemptAdmin):
    actions = []
