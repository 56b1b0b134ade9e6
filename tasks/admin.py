from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from common.templatetags.text_marks import visible

from .models import CodingTask, TaskLimit, TaskPullRequest, TaskRuntime, TaskUsage


def _shown_visibly(
    admin_class: type[admin.options.BaseModelAdmin], model: type[Model], names: list[str]
) -> list[str]:
    """The read-only fields ``names``, each free text one replaced by a display of the admin's
    (``<name>_shown``) as the task page shows it (the ``visible`` filter), and left out of its
    form: the agent's words (its log, answer, diff) and what was made of them can hold
    characters that reorder or hide what is around them."""
    shown, replaced = [], []
    for name in names:
        if _free_text(model, name):
            setattr(admin_class, f"{name}_shown", staticmethod(_visible(model, name)))
            replaced.append(name)
            name = f"{name}_shown"
        shown.append(name)
    admin_class.exclude = [*(admin_class.exclude or ()), *replaced]
    return shown


def _free_text(model: type[Model], name: str) -> bool:
    field = model._meta.get_field(name)
    return isinstance(field, models.CharField | models.TextField) and not field.choices


def _visible(model: type[Model], name: str) -> Callable[[Model], str]:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)  # _free_text chose it

    @admin.display(description=field.verbose_name)
    def shown(obj: Model) -> str:
        return visible(getattr(obj, name))

    return shown


class _ReadOnlyInline(admin.StackedInline):
    """One of the task's own rows, shown with it: written by the worker, never here."""

    can_delete = False
    extra = 0
    max_num = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = [f.name for f in cls.model._meta.fields if f.name not in (cls.exclude or ())]
        cls.readonly_fields = _shown_visibly(cls, cls.model, names)

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
    inlines = (TaskUsageInline, TaskLimitInline, TaskPullRequestInline, TaskRuntimeInline)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tasks are submitted by users through the app


CodingTaskAdmin.readonly_fields = _shown_visibly(
    CodingTaskAdmin, CodingTask, [f.name for f in CodingTask._meta.fields]
)
