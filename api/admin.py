"""Admin for consumers and keys: keys can be revoked; their value is never stored."""

from django.contrib import admin, messages
from django.utils import timezone

from api.models import ApiKey, Consumer, api_key_create


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ["prefix", "label", "created", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created", "last_used_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Consumer)
class ConsumerAdmin(admin.ModelAdmin):
    list_display = ["name", "created"]
    search_fields = ["name"]
    inlines = [ApiKeyInline]
    actions = ["create_key"]

    @admin.action(description="Create a new API key (shown once)")
    def create_key(self, request, queryset):
        for consumer in queryset:
            _, raw = api_key_create(consumer_name=consumer.name, label=f"admin:{request.user}")
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

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.success(request, f"Revoked {count} key(s).")
