from django.contrib import admin
from django.http import HttpRequest

from .models import CodingTask


@admin.register(CodingTask)
class CodingTaskAdmin(admin.ModelAdmin):
    list_display = (
        "pk",
        "owner",
        "status",
        "auth_method",
        "auth_source",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "auth_method", "agent")
    search_fields = ("owner__username", "repo_url")
    list_select_related = ("owner",)
    # The agent's commits (a git bundle) are bytes, not for reading here.
    readonly_fields = [f.name for f in CodingTask._meta.fields if f.name != "result_bundle"]
    exclude = ("result_bundle",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tasks are submitted by users through the app
