from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from .models import CodingTask, TaskLimit, TaskPullRequest, TaskRuntime, TaskUsage


class _ReadOnlyInline(admin.StackedInline):
    """One of the task's own rows, shown with it: written by the worker, never here."""

    can_delete = False
    extra = 0
    max_num = 1

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name not in (self.exclude or ())]

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class TaskUsageInline(_ReadOnlyInline):
    model = TaskUsage


class TaskLimitInline(_ReadOnlyInline):
    model = TaskLimit


class TaskPullRequestInline(_ReadOnlyInline):
    model = TaskPullRequest
    # The agent's commits (a git bundle) are bytes, not for reading here: not even loaded.
    exclude = ("bundle",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskPullRequest]:
        return super().get_queryset(request).defer("bundle")


class TaskRuntimeInline(_ReadOnlyInline):
    model = TaskRuntime


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
    readonly_fields = [f.name for f in CodingTask._meta.fields]
    inlines = (TaskUsageInline, TaskLimitInline, TaskPullRequestInline, TaskRuntimeInline)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tasks are submitted by users through the app
