from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import ApiToken, GitHubDelivery
from .services import api_token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Every token's metadata; never its secret (only a hash is stored, and not shown either)."""

    list_display = (
        "name",
        "owner",
        "prefix",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_address",
        "revoked_at",
    )
    list_filter = ("scope",)
    search_fields = ("owner__username", "name", "prefix")
    list_select_related = ("owner",)
    exclude = ("secret_hash",)
    readonly_fields = list_display  # metadata only: a token is made and revoked, never edited
    actions = ("revoke",)

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = sum(api_token_revoke(token=token) for token in queryset)
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by their owners, who alone see the secret


@admin.register(GitHubDelivery)
class GitHubDeliveryAdmin(admin.ModelAdmin):
    """Every GitHub webhook delivery and what came of it (a task, ignored, refused)."""

    list_display = ("received_at", "event", "delivery_id", "repository", "comment_id", "outcome")
    list_filter = ("event",)
    search_fields = ("delivery_id", "repository", "outcome")
    readonly_fields = list_display
    date_hierarchy = "received_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
