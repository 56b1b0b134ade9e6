"""The credential audit log in the admin: every use and refresh, filterable, never editable."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from ..models import CredentialAuditEvent


@admin.register(CredentialAuditEvent)
class CredentialAuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "at",
        "username",
        "credential_kind",
        "credential_id",
        "action",
        "task_id",
        "outcome",
        "detail",
    )
    list_filter = ("action", "credential_kind", "at")
    search_fields = ("username", "outcome", "detail", "=task_id", "=credential_id")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in CredentialAuditEvent._meta.fields]
    list_per_page = 100

    # Append-only: written by the services, read here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
