"""What a user asks of a finished task's pull request (web side). The work itself runs on a
worker (tasks.pull_requests); follow-ups are tasks.follow_ups."""

import logging

from django.db import transaction

from tasks.models import CodingTask, PullRequestState, TaskPullRequest
from tasks.queue import pull_request_enqueue
from tasks.validation import TaskInputError

from .create import pull_request_blocker

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
