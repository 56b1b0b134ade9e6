from django.contrib import admin
from django.http import HttpRequest

from .models import UserPreferences
from .parsers import agent_env_name_labels


@admin.register(UserPreferences)
class UserPreferencesAdmin(admin.ModelAdmin):
    # Secrets are never shown: only whether a key is set and its last four characters.
    list_display = (
        "user",
        "use_oauth",
        "api_key_hint",
        "max_running_tasks",
        "max_queued_tasks",
        "updated_at",
    )
    list_filter = ("use_oauth",)
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    fields = (
        "user",
        "use_oauth",
        "api_key_hint",
        "agent_env_names",
        "max_running_tasks",
        "max_queued_tasks",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("user", "api_key_hint", "agent_env_names", "created_at", "updated_at")

    @admin.display(description="API key")
    def api_key_hint(self, obj: UserPreferences) -> str:
        return f"set, ends in …{obj.api_key_last4}" if obj.has_api_key else "not set"

    @admin.display(description="Extra agent environment (names only)")
    def agent_env_names(self, obj: UserPreferences) -> str:
        return ", ".join(sorted(agent_env_name_labels(env=obj.agent_env or {}))) or "none"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created on first use
