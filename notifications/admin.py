from django.contrib import admin
from django.http import HttpRequest

from .models import Delivery, NotificationSettings


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Every notification and how its delivery went; failures are filterable."""

    list_display = (
        "created_at",
        "recipient",
        "event",
        "channel",
        "status",
        "attempts",
        "last_error",
        "sent_at",
    )
    list_filter = ("status", "channel", "event")
    search_fields = ("recipient__username", "subject", "key")
    list_select_related = ("recipient",)
    readonly_fields = [f.name for f in Delivery._meta.fields]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ("user", "email_enabled", "webhook_host", "updated_at")
    exclude = ("webhook_url",)  # a secret: never shown
    readonly_fields = ("webhook_host", "updated_at")
