"""A task's repository on the worker: cloned before the container starts (with the owner's
GitHub token when the repository is on the configured GitHub, never given to the container),
put into the container as its working tree, and, after the run, the container's git bundle of
the agent's commits kept on the task for its pull request.
"""

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from hosting.errors import HostingError
from hosting.git import repository_clone
from hosting.services import github_token_get, repository_parse
from tasks.models import CodingTask, PullRequestState, TaskPullRequest, TaskStatus
from tasks.pull_requests.create import task_pull_request_create
from tasks.signals import task_recorded

from .containers import ContainerOutcome
from .log import TaskLog

logger = logging.getLogger(__name__)

BUNDLE = "changes.bundle"


@dataclass(frozen=True)
class Workspace:
    path: Path  # the working tree, with its .git
    branch: str  # what was checked out
    start_commit: str
    base_branch: str  # where a pull request goes


def workspace_dir(*, task_id: int) -> Path:
    """Per task and worker process: two installations (or test runs) on one host never share
    one, and the process that made it removes it (tasks.run.runner.task_run)."""
    return (
        Path(tempfile.gettempdir()) / "claude-runner-workspaces" / f"task-{task_id}-{os.getpid()}"
    )


def _token_for(task: CodingTask) -> str:
    """The owner's GitHub token, only for a repository on the configured GitHub: git would
    otherwise hand it to whatever host asks."""
    if urlsplit(task.repo_url).scheme != "https":
        return ""
    try:
        repository_parse(url=task.repo_url)
    except HostingError:
        return ""
    return github_token_get(user=task.owner)


def workspace_prepare(*, task: CodingTask) -> Workspace:
    """Clone the task's repository and branch on the worker. Raises HostingError saying why
    not (egress refused, no or bad token, no such repository or branch, ...)."""
    workspaces_stale_remove()
    folder = workspace_dir(task_id=task.pk)
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.mkdir(mode=0o700)
    # Only .git: the container checks the files out (agent/README.md), half the bytes to copy.
    cloned = repository_clone(
        url=task.repo_url,
        branch=task.branch,
        token=_token_for(task),
        dest=folder / "work",
        checkout=False,
    )
    pull_request = TaskPullRequest.objects.filter(pk=task.pk)
    base = pull_request.values_list("base_branch", flat=True).get() or cloned.branch
    pull_request.update(start_commit=cloned.head, base_branch=base)
    return Workspace(
        path=cloned.path, branch=cloned.branch, start_commit=cloned.head, base_branch=base
    )


def workspace_remove(*, task_id: int) -> None:
    shutil.rmtree(workspace_dir(task_id=task_id), ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def workspaces_stale_remove() -> int:
    """Remove the clones that dead worker processes on this host left behind."""
    removed = 0
    root = workspace_dir(task_id=0).parent
    for folder in root.glob("task-*-*") if root.is_dir() else ():
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def workspace_record(*, task: CodingTask, outcome: ContainerOutcome, log: TaskLog) -> None:
    """Keep the agent's commits (the bundle) on the task and open the pull request if asked;
    then tell listeners the task's record is complete (tasks.signals.task_recorded)."""
    try:
        _changes_keep(task, outcome, log)
    finally:
        task_recorded.send_robust(sender=CodingTask, task_id=task.pk)


def _changes_keep(task: CodingTask, outcome: ContainerOutcome, log: TaskLog) -> None:
    bundle = outcome.outputs.get(BUNDLE, b"")
    if not bundle:
        return
    if len(bundle) > settings.AGENT_BUNDLE_MAX_BYTES:
        log.note(
            f"The agent's commits are larger than {settings.AGENT_BUNDLE_MAX_BYTES:,} bytes and "
            "were not kept; no pull request can be made from this task."
        )
        return
    TaskPullRequest.objects.filter(pk=task.pk).update(bundle=bundle)
    status = CodingTask.objects.values_list("status", flat=True).get(pk=task.pk)
    if task.open_pull_request and status == TaskStatus.SUCCEEDED:
        TaskPullRequest.objects.filter(pk=task.pk).update(state=PullRequestState.PENDING)
        task_pull_request_create(task_id=task.pk)
