from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import CodingTask, TaskPullRequest


def tasks_for_user(*, user: User) -> QuerySet[CodingTask]:
    return CodingTask.objects.filter(owner=user).defer("log", "diff")


def task_get_for_user(*, user: User, task_id: int) -> CodingTask:
    """The user's own task; another user's task is a 404, as if it did not exist. Without the
    agent's commits (up to AGENT_BUNDLE_MAX_BYTES): pages ask task_bundle_kept instead."""
    return get_object_or_404(
        CodingTask.objects.select_related("usage", "limit", "pull_request").defer(
            "pull_request__bundle"
        ),
        pk=task_id,
        owner=user,
    )


def task_bundle_kept(*, task_id: int) -> bool:
    """Whether the task's commits were kept (without reading them)."""
    return (
        TaskPullRequest.objects.filter(pk=task_id, bundle__isnull=False)
        .exclude(bundle=b"")
        .exists()
    )


def diff_lines(*, diff: str) -> list[tuple[str, str]]:
    """(css class, line) pairs for a coloured diff."""
    lines = []
    for line in diff.splitlines():
        if line.startswith(("diff --git", "+++ ", "--- ", "new file", "deleted file", "index ")):
            css = "file"
        elif line.startswith("@@"):
            css = "hunk"
        elif line.startswith("+"):
            css = "add"
        elif line.startswith("-"):
            css = "del"
        else:
            css = ""
        lines.append((css, line))
    return lines


def task_chain(*, task: CodingTask) -> list[CodingTask]:
    """The tasks this one continues (oldest first), itself, and the tasks that continue it."""
    before: list[CodingTask] = []
    seen = {task.pk}
    current = task.parent
    while current is not None and current.pk not in seen:
        before.append(current)
        seen.add(current.pk)
        current = current.parent
    after: list[CodingTask] = []
    frontier = [task]
    while frontier:
        children = list(
            CodingTask.objects.filter(parent__in=frontier)
            .exclude(pk__in=seen)
            .defer("log", "diff")
            .order_by("created_at", "pk")
        )
        seen.update(c.pk for c in children)
        after += children
        frontier = children
    return [*reversed(before), task, *after]
