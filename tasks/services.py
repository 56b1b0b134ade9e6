"""Actions on coding tasks: submit, cancel, run a waiting task now on the owner's API key."""

import logging
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from accounts.selectors import task_limits_for_user
from accounts.services import preferences_lock
from environments.services import CHOICE_AUTO, task_environment_choose
from hosting.selectors import pull_request_host_blocker
from tasks.models import AgentKind, CodingTask, TaskPullRequest, TaskStatus
from tasks.queue import task_enqueue
from tasks.validation import (
    PullRequestBlocked,
    TaskInputError,
    TaskNotPossible,
    branch_name_check,
    prompt_check,
    repo_url_check,
)
from tasks.waits.usage_limit import task_resume

logger = logging.getLogger(__name__)


@transaction.atomic
def task_create(
    *,
    owner: User,
    repo_url: str,
    prompt: str,
    branch: str = "",
    open_pull_request: bool = False,
    parent: CodingTask | None = None,
) -> CodingTask:
    """Check the input and the owner's task limits, and queue the task. Raises TaskInputError
    with the field at fault (None: the limits). A follow-up (``parent``) keeps its parent's
    agent and pull-request base."""
    values = {
        "repo_url": repo_url_check(url=repo_url),
        "branch": branch_name_check(branch=branch),
        "prompt": prompt_check(prompt=prompt),
    }
    if open_pull_request:  # refused now rather than failing after the run
        blocker = pull_request_host_blocker(user=owner, repo_url=values["repo_url"])
        if blocker is not None:
            raise PullRequestBlocked(blocker.reason)
    _task_limits_check(owner=owner)
    task = CodingTask.objects.create(
        owner=owner,
        agent=parent.agent if parent is not None else AgentKind.CLAUDE,
        open_pull_request=open_pull_request,
        parent=parent,
        requeue_at=timezone.now(),  # due now: the sweep puts it back if its job is lost
        **values,
    )
    if parent is not None:  # its pull request goes where the parent's went
        base = TaskPullRequest.objects.values_list("base_branch", flat=True).get(pk=parent.pk)
        TaskPullRequest.objects.filter(pk=task.pk).update(base_branch=base)
    task_enqueue(task_id=task.pk)
    logger.info("Task %s queued for user %s", task.pk, owner.pk)
    return task


@transaction.atomic  # it is queued once this commits, its environment recorded
def task_submit(
    *,
    owner: User,
    repo_url: str,
    prompt: str,
    branch: str = "",
    open_pull_request: bool = False,
    environment: str = CHOICE_AUTO,
) -> CodingTask:
    """A new task as a user submits it (the form, the API, a mention): task_create, then the
    environment it runs with: an id, "auto" (the matching one) or "none". Raises InputError:
    TaskInputError, or field "environment" for one the owner may not use (nothing is made)."""
    task = task_create(
        owner=owner,
        repo_url=repo_url,
        prompt=prompt,
        branch=branch,
        open_pull_request=open_pull_request,
    )
    task_environment_choose(
        task_id=task.pk, owner=owner, repo_url=task.repo_url, choice=environment
    )
    return task


def _task_limits_check(*, owner: User) -> None:
    """Refuse a task beyond the owner's limits. Holds the owner's preferences row locked to the
    end of the caller's transaction, so a burst of submissions is counted one after another.

    A new task may take a free running slot (it starts as soon as a worker is free) or wait:
    it fits while waiting < free running slots + the waiting limit, where waiting counts the
    tasks queued and those waiting for a usage limit to reset (they run again by themselves).
    """
    preferences = preferences_lock(user=owner)
    limits = task_limits_for_user(preferences=preferences)
    counts = dict(
        CodingTask.objects.filter(
            owner=owner, status__in=(TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING)
        )
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    running = counts.get(TaskStatus.RUNNING, 0)
    queued = counts.get(TaskStatus.QUEUED, 0) + counts.get(TaskStatus.WAITING, 0)
    free_slots = max(0, limits.max_running - running)
    if queued < free_slots + limits.max_queued:
        return
    raise TaskInputError(
        None,
        f"Not queued: you have {_tasks_words(running)} running and {_tasks_words(queued)} "
        f"waiting to start, and your limits are {limits.max_running} running at once and "
        f"{limits.max_queued} waiting. Submit it again when one has finished, or cancel a "
        "waiting one.",
    )


def _tasks_words(count: int) -> str:
    return f"{count} task{'s' if count != 1 else ''}"


def task_cancel(*, task: CodingTask) -> str:
    """Cancel a queued or waiting task at once; ask the worker to stop a running one. Returns
    the status."""
    now = timezone.now()
    if CodingTask.objects.filter(
        pk=task.pk, status__in=(TaskStatus.QUEUED, TaskStatus.WAITING)
    ).update(
        status=TaskStatus.CANCELLED,
        cancel_requested=True,
        requeue_at=None,
        finished_at=now,
        error_message="Cancelled before it ran (again).",
    ):
        return TaskStatus.CANCELLED
    # Running: the worker checks this flag every second, stops and removes the container.
    CodingTask.objects.filter(pk=task.pk, status=TaskStatus.RUNNING).update(cancel_requested=True)
    task.refresh_from_db()
    return task.status


@dataclass(frozen=True)
class RunNowAccepted:
    """ "Run now with my API key", accepted. queued False: the owner's running slots are all
    taken, and the task runs on the key as soon as one is free (the queue's sweep looks again)."""

    queued: bool
    message: str


@transaction.atomic
def task_run_now_with_api_key(*, task: CodingTask) -> RunNowAccepted:
    """A task waiting for a usage limit runs on the owner's own API key: now, or when one of
    their running slots frees. Raises TaskNotPossible, having changed nothing, when the task is
    not waiting or the owner has no API key saved."""
    # Locked in task_resume's order (the owner's preferences, then the task): a resume or a
    # cancel meanwhile waits for this answer instead of changing what it was decided on.
    preferences = preferences_lock(user=task.owner)
    waiting = CodingTask.objects.select_for_update().filter(pk=task.pk, status=TaskStatus.WAITING)
    if waiting.values_list("pk", flat=True).first() is None:
        raise TaskNotPossible("The task is not waiting any more.")
    if not preferences.has_api_key:
        raise TaskNotPossible(
            "You have no API key saved: save one on the Code agent settings page first."
        )
    waiting.update(force_api_key=True)
    if task_resume(task_id=task.pk, force=True):
        task_enqueue(task_id=task.pk)
        return RunNowAccepted(queued=True, message="Running now with your API key.")
    return RunNowAccepted(
        queued=False,
        message="Your running slots are all taken: the task starts on your API key as soon as "
        "one is free.",
    )
