"""A finished task's commits as a pull request (worker side): clone the revision the task
started from, read the container's git bundle into it, push the task's branch, open the pull
request, or, for a follow-up task, push onto its parent's branch so that pull request updates.

Every refusal (no token, no permission, protected branch, a pull request that exists, rate
limit, not on GitHub, ...) is stored on the task as its message; nothing here raises for them.
"""

import logging
import tempfile
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from hosting.errors import NO_TOKEN_MESSAGE, HostingError, Refusal
from hosting.git import (
    ClonedRepository,
    branch_push_from_bundle,
    bundles_check_out,
    repository_clone,
)
from hosting.selectors import PullRequestBlocker, pull_request_host_blocker
from hosting.services import (
    github_token_get,
    pull_request_branch_name,
    pull_request_open,
    pull_request_text,
    repository_parse,
)
from tasks.models import CodingTask, PullRequestState, TaskPullRequest, TaskStatus
from tasks.run.chain import chain_start
from tasks.selectors import task_bundle_kept

logger = logging.getLogger(__name__)

DONE_STATES = (PullRequestState.OPENED, PullRequestState.PUSHED)


def pull_request_blocker(*, task: CodingTask) -> PullRequestBlocker | None:
    """Why this task cannot get a pull request now, and where to fix it (None when it can):
    the task's own state first, then what the host needs (hosting.selectors)."""
    reason = _task_state_blocker(task)
    if reason:
        return PullRequestBlocker(reason)
    return pull_request_host_blocker(user=task.owner, repo_url=task.repo_url)


def _task_state_blocker(task: CodingTask) -> str:
    if not task.is_finished:
        return "The task is still running."
    if task.status == TaskStatus.CANCELLED:
        return "The task was cancelled."
    if not task_bundle_kept(task_id=task.pk):
        # The reason its commits were not kept, if they were refused (tasks.run.workspace).
        return (
            task.pull_request.error or "The task made no changes, so there is nothing to propose."
        )
    if task.pull_request.state in DONE_STATES:
        return "The pull request exists already."
    if task.pull_request.state == PullRequestState.PENDING:
        return "The pull request is being created."
    return ""


def _target_branch(task: CodingTask) -> str:
    parent = task.parent.pull_request if task.parent is not None else None
    if parent is not None and parent.branch and parent.state in DONE_STATES:
        return parent.branch
    return pull_request_branch_name(task_id=task.pk, prompt=task.prompt)


def task_pull_request_create(*, task_id: int) -> None:
    """Push the task's commits and open (or update) its pull request; record what happened."""
    task = CodingTask.objects.select_related(
        "owner", "usage", "pull_request", "parent__pull_request"
    ).get(pk=task_id)
    rows = TaskPullRequest.objects.filter(pk=task.pk)
    try:
        _push_and_open(task)
    except HostingError as exc:
        rows.update(state=PullRequestState.FAILED, error=exc.message)
        logger.info("Pull request for task %s refused: %s", task.pk, exc.kind)
    except Exception:
        logger.exception("Pull request for task %s failed", task.pk)
        rows.update(
            state=PullRequestState.FAILED,
            error="The pull request could not be created because of an error on this server; "
            "try again, and tell the operator if it keeps happening.",
        )


def _push_and_open(task: CodingTask) -> None:
    mine = task.pull_request
    if not mine.bundle:
        raise HostingError(
            Refusal.INVALID, "The task made no changes, so there is nothing to push."
        )
    repository_parse(url=task.repo_url)  # not on GitHub: said before any clone
    token = github_token_get(user=task.owner)
    if not token:
        raise HostingError(Refusal.NO_TOKEN, NO_TOKEN_MESSAGE)
    branch = _target_branch(task)
    # A follow-up of a task without a pull request started from its parent's commits, which
    # are only in their bundles: those go first, so its pull request holds the whole chain's.
    start = chain_start(task=task)
    with tempfile.TemporaryDirectory(prefix="claude-runner-pr-") as scratch:
        cloned = repository_clone(
            url=task.repo_url,
            branch="",
            token=token,
            dest=Path(scratch) / "repo",
            commit=start.commit if start is not None else mine.start_commit,
        )
        if start is not None and start.bundles:
            earlier = []
            for number, data in enumerate(start.bundles):
                earlier.append(Path(scratch) / f"earlier-{number}.bundle")
                earlier[-1].write_bytes(data)
            head = bundles_check_out(repo=cloned, bundles=earlier)
            cloned = ClonedRepository(path=cloned.path, head=head, branch="")
        bundle = Path(scratch) / "changes.bundle"
        bundle.write_bytes(bytes(mine.bundle))
        pushed = branch_push_from_bundle(
            repo=cloned, bundle=bundle, url=task.repo_url, token=token, branch=branch
        )
    rows = TaskPullRequest.objects.filter(pk=task.pk)
    parent = task.parent.pull_request if task.parent is not None else None
    if parent is not None and branch == parent.branch:
        # A follow-up: the pull request of its parent now shows the new commits.
        rows.update(
            state=PullRequestState.PUSHED,
            branch=branch,
            commit=pushed.head,
            number=parent.number,
            url=parent.url,
            error="",
        )
        return
    rows.update(branch=branch, commit=pushed.head)
    title, body = pull_request_text(
        prompt=task.prompt,
        summary=task.result_text,
        cost_usd=task.usage.cost_usd,
        task_url=settings.SITE_URL + reverse("tasks:detail", args=[task.pk]),
    )
    pull = pull_request_open(
        user=task.owner,
        repo_url=task.repo_url,
        head=branch,
        base=mine.base_branch,
        title=title,
        body=body,
    )
    rows.update(state=PullRequestState.OPENED, number=pull.number, url=pull.url, error="")
