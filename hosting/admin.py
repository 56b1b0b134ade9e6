from django.contrib import admin

from .models import GitHubConnection


@admin.register(GitHubConnection)
class GitHubConnectionAdmin(admin.ModelAdmin):
    """Who is connected and until when; the token is never shown or editable here."""

    list_display = ("owner", "login", "token_last4", "expires_at", "checked_at")
    search_fields = ("owner__username", "login")
    fields = ("owner", "login", "token_last4", "expires_at", "api_url", "checked_at")
    readonly_fields = fields

    def has_add_permission(self, request: object) -> bool:
        return False
