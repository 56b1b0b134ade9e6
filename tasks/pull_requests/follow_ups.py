"""What a user asks of a finished task (web side): its pull request, and a follow-up task on
that pull request's branch. The work itself runs on a worker (tasks.pull_requests)."""

import logging

from django.db import transaction

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
    if blocker is not None:
        raise TaskInputError(None, blocker.reason)
    claimed = TaskPullRequest.objects.filter(
        pk=task.pk, state__in=(PullRequestState.NONE, PullRequestState.FAILED)
    ).update(state=PullRequestState.PENDING, error="")
    if not claimed:  # another click won the race
        raise TaskInputError(None, "The pull request is being created.")
    pull_request_enqueue(task_id=task.pk)


def task_continue(*, parent: CodingTask, prompt: str) -> CodingTask:
    """A new task on the parent's pull-request branch; its commits update that pull request."""
    blocker = continue_blocker(task=parent)
    if blocker:
        raise TaskInputError("prompt", blocker)
    return task_create(
        owner=parent.owner,
        repo_url=parent.repo_url,
        branch=parent.pull_request.branch,
        prompt=prompt,
        open_pull_request=True,
        parent=parent,
    )
