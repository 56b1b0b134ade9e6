"""The admin's usage by user: tasks, tokens and cost over the last 30 days."""

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from .models import UserUsage

_RECENT = timedelta(days=30)


@admin.register(UserUsage)
class UserUsageAdmin(admin.ModelAdmin):
    list_display = (
        "username",
        "tasks_30d",
        "tokens_in_30d",
        "tokens_out_30d",
        "cost_30d",
        "limited_30d",
    )
    search_fields = ("username", "email")
    ordering = ("username",)
    fields = ("username",)
    readonly_fields = ("username",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[UserUsage]:
        since = timezone.now() - _RECENT
        recent = Q(coding_tasks__created_at__gte=since)
        return (
            super()
            .get_queryset(request)
            .annotate(
                tasks_30d=Count("coding_tasks", filter=recent),
                tokens_in_30d=Sum("coding_tasks__usage__input_tokens", filter=recent),
                tokens_out_30d=Sum("coding_tasks__usage__output_tokens", filter=recent),
                cost_30d=Sum("coding_tasks__usage__cost_usd", filter=recent),
                limited_30d=Count(
                    "coding_tasks", filter=recent & Q(coding_tasks__limit__waits__gt=0)
                ),
            )
        )

    @admin.display(description="tasks (30 days)", ordering="tasks_30d")
    def tasks_30d(self, obj: UserUsage) -> int:
        return obj.tasks_30d  # type: ignore[attr-defined]

    @admin.display(description="tokens in", ordering="tokens_in_30d")
    def tokens_in_30d(self, obj: UserUsage) -> int:
        return obj.tokens_in_30d or 0  # type: ignore[attr-defined]

    @admin.display(description="tokens out", ordering="tokens_out_30d")
    def tokens_out_30d(self, obj: UserUsage) -> int:
        return obj.tokens_out_30d or 0  # type: ignore[attr-defined]

    @admin.display(description="cost (USD)", ordering="cost_30d")
    def cost_30d(self, obj: UserUsage) -> str:
        return f"{obj.cost_30d or 0:.4f}"  # type: ignore[attr-defined]

    @admin.display(description="tasks that waited for a limit", ordering="limited_30d")
    def limited_30d(self, obj: UserUsage) -> int:
        return obj.limited_30d  # type: ignore[attr-defined]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(
            request, {"title": "Usage by user, last 30 days", **(extra_context or {})}
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return bool(request.user.is_staff)
