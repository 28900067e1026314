from django.contrib import admin, messages

from apps.core.models import ApiKey
from apps.core.services import api_key_assign_secret, api_key_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix_display", "user", "scope", "created_at", "expires_at", "last_used_at",
                    "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "key_id", "user__username"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["prefix_display", "created_at", "last_used_at"]
    fields = ["name", "user", "scope", "expires_at", "revoked_at", "prefix_display", "created_at", "last_used_at"]
    actions = ["revoke"]

    @admin.display(description="prefix")
    def prefix_display(self, obj):
        return f"{obj.prefix}…" if obj.key_id else "—"

    def get_readonly_fields(self, request, obj=None):
        # The scope and owner of an issued key never change: issue a new key instead.
        return [*self.readonly_fields, "user", "scope"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token = api_key_assign_secret(key=obj)
        super().save_model(request, obj, form, change)
        messages.warning(request, f"Copy this API key now; it will not be shown again: {token}")

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
