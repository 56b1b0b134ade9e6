"""What a user asks of a finished task (web side): its pull request, and a follow-up task on
that pull request's branch. The work itself runs on a worker (tasks.pull_requests)."""

import contextlib
import logging

from django.db import transaction

from common.errors import InputError
from environments.selectors import task_environment_get
from environments.services import task_environment_choose
from tasks.models import CodingTask, PullRequestState, TaskPullRequest
from tasks.queue import pull_request_enqueue
from tasks.services import task_create
from tasks.validation import TaskInputError

from .create import continue_blocker, pull_request_blocker

logger = logging.getLogger(__name__)


@transaction.atomic
def task_pull_request_request(*, task: CodingTask) -> None:
    """Queue the pull request of a finished task. Raises TaskInputError saying why not."""
    blocker = pull_request_blocker(task=task)
    if blocker:
        raise TaskInputError(None, blocker)
    claimed = TaskPullRequest.objects.filter(
        pk=task.pk, state__in=(PullRequestState.NONE, PullRequestState.FAILED)
    ).update(state=PullRequestState.PENDING, error="")
    if not claimed:  # another click won the race
        raise TaskInputError(None, "The pull request is being created.")
    pull_request_enqueue(task_id=task.pk)


@transaction.atomic  # it runs once this commits, with its environment recorded
def task_continue(*, parent: CodingTask, prompt: str) -> CodingTask:
    """A new task on the parent's pull-request branch; its commits update that pull request.
    It runs with the parent's environment while its owner may still use it."""
    blocker = continue_blocker(task=parent)
    if blocker:
        raise TaskInputError("prompt", blocker)
    task = task_create(
        owner=parent.owner,
        repo_url=parent.repo_url,
        branch=parent.pull_request.branch,
        prompt=prompt,
        open_pull_request=True,
        parent=parent,
    )
    ran = task_environment_get(task_id=parent.pk)
    if ran is not None and ran.environment_id is not None:
        with contextlib.suppress(InputError):  # gone or no longer shared: none
            task_environment_choose(
                task_id=task.pk,
                owner=parent.owner,
                repo_url=parent.repo_url,
                choice=str(ran.environment_id),
            )
    return task
