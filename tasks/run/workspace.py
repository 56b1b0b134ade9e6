"""A task's repository on the worker: cloned before the container starts (with the owner's
GitHub token when the repository is on the configured GitHub, never given to the container),
put into the container as its working tree, and, after the run, the container's git bundle of
the agent's commits kept on the task for its pull request.
"""

import logging
import os
import shutil
import stat
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from hosting.errors import HostingError
from hosting.git import ClonedRepository, bundle_check, bundles_check_out, repository_clone
from hosting.services import github_token_get, repository_parse
from tasks.models import CodingTask, PullRequestState, TaskPullRequest, TaskStatus
from tasks.pull_requests.create import task_pull_request_create
from tasks.signals import task_recorded

from .chain import chain_start
from .containers import ContainerError, ContainerOutcome
from .log import TaskLog

logger = logging.getLogger(__name__)

BUNDLE = "changes.bundle"
# Per task and worker process, with a random tail: two installations (or test runs) on one host
# never share one, and the process that made it removes it (tasks.run.runner.task_run).
WORKSPACE_PREFIX = "claude-runner-task-"


@dataclass(frozen=True)
class Workspace:
    path: Path  # the working tree, with its .git
    branch: str  # what was checked out
    start_commit: str
    base_branch: str  # where a pull request goes
    # What the clone holds, for what its setup may do (tasks.run.setup_rights): the branch
    # and commit fetched from the remote as they were ("" when cloned at an earlier task's
    # start), and whether the task continues an earlier task's work (a follow-up).
    remote_branch: str = ""
    remote_commit: str = ""
    continues_task: bool = False


def _mine(task_id: int) -> str:
    """The name of this process's clone folder of a task, after WORKSPACE_PREFIX and before
    the random tail."""
    return f"{task_id}-{os.getpid()}-"


def workspaces_found(*, pattern: str = "*") -> list[Path]:
    """This worker user's clone folders in the temporary folder matching ``pattern`` (after the
    prefix): real folders it owns, never a symbolic link or another user's folder of that name."""
    found = []
    for folder in Path(tempfile.gettempdir()).glob(WORKSPACE_PREFIX + pattern):
        try:
            info = folder.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
            found.append(folder)
    return found


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


class WorkspaceClone:
    """A task's clone on the worker. A follow-up's earlier commits (its chain's bundles) are
    read into it by a thread of their own, which mostly waits on git while the runner gets the
    container ready; finished() waits for them and records where the task starts."""

    def __init__(
        self,
        task: CodingTask,
        cloned: ClonedRepository,
        reading: Future[ClonedRepository] | None = None,
        *,
        fetched: bool = False,
    ) -> None:
        self._task = task
        self._cloned = cloned
        self._reading = reading
        self._fetched = fetched  # cloned is the remote's branch as it was
        self._finished: Workspace | None = None

    @property
    def is_finished(self) -> bool:
        return self._finished is not None

    @property
    def reads_earlier_commits(self) -> bool:
        return self._reading is not None

    def finished(self) -> Workspace:
        """The clone with everything in; HostingError saying why an earlier task's commits
        could not be read in."""
        if self._finished is None:
            cloned = self._reading.result() if self._reading is not None else self._cloned
            pull_request = TaskPullRequest.objects.filter(pk=self._task.pk)
            base = pull_request.values_list("base_branch", flat=True).get() or cloned.branch
            pull_request.update(start_commit=cloned.head, base_branch=base)
            remote = self._cloned if self._fetched else None
            self._finished = Workspace(
                path=cloned.path,
                branch=cloned.branch,
                start_commit=cloned.head,
                base_branch=base,
                remote_branch=remote.branch if remote else "",
                remote_commit=remote.head if remote else "",
                continues_task=self._task.parent_id is not None,
            )
        return self._finished


# The earlier commits being read in, by task: the clone is not removed under them.
_reading: dict[int, Future[ClonedRepository]] = {}


def workspace_clone(*, task: CodingTask) -> WorkspaceClone:
    """Clone the task's repository and branch on the worker, a follow-up's earlier commits
    then read in (WorkspaceClone). Raises HostingError saying why not (egress refused, no or
    bad token, no such repository or branch, ...)."""
    workspaces_stale_remove()
    workspace_remove(task_id=task.pk)
    # A fresh private folder (mode 0700, a name nobody can guess or create first): no other
    # local user can put a symbolic link where the clone goes, nor read it.
    folder = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX + _mine(task.pk)))
    # Only .git: the container checks the files out (agent/README.md), half the bytes to copy.
    start = chain_start(task=task)
    cloned = repository_clone(
        url=task.repo_url,
        branch=task.branch if start is None else "",
        token=_token_for(task),
        dest=folder / "work",
        commit=start.commit if start is not None else "",
        checkout=False,
    )
    if start is None:
        return WorkspaceClone(task, cloned, fetched=True)
    if not start.bundles:
        return WorkspaceClone(task, ClonedRepository(cloned.path, cloned.head, task.branch))
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="earlier-commits")
    try:
        reading = pool.submit(
            _earlier_commits_check_out, cloned, start.bundles, folder, task.branch
        )
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one job
    _reading[task.pk] = reading
    return WorkspaceClone(task, cloned, reading)


CLONE_FAILED = "Could not clone the repository"


class WorkspaceUnusable(ContainerError):
    """An earlier task's commits could not be read into a follow-up's clone."""


def workspace_finished(*, task: CodingTask, clone: WorkspaceClone, log: TaskLog) -> Workspace:
    """The clone with everything in, waited for where it is first needed (the tree put into
    the container, the environment's setup), and said on the log then. WorkspaceUnusable
    saying why when an earlier task's commits could not be read in."""
    said = clone.is_finished
    try:
        workspace = clone.finished()
    except HostingError as exc:
        raise WorkspaceUnusable(f"{CLONE_FAILED}: {exc.message}") from exc
    if not said:
        log.note(
            f"Cloned {task.repo_url} (branch {workspace.branch}) at "
            f"{workspace.start_commit[:12]} on the worker"
        )
    return workspace


def _earlier_commits_check_out(
    cloned: ClonedRepository, bundles: list[bytes], folder: Path, branch: str
) -> ClonedRepository:
    paths = []
    for number, bundle in enumerate(bundles):
        path = folder / f"earlier-{number}.bundle"
        path.write_bytes(bundle)
        paths.append(path)
    head = bundles_check_out(repo=cloned, bundles=paths, checkout=False) if paths else cloned.head
    return ClonedRepository(path=cloned.path, head=head, branch=branch)


def workspace_remove(*, task_id: int) -> None:
    """Remove the task's clone made by this process (once nothing is read into it)."""
    reading = _reading.pop(task_id, None)
    if reading is not None:
        futures_wait([reading])  # it ends: each of its git commands has a time limit
    for folder in workspaces_found(pattern=_mine(task_id) + "*"):
        shutil.rmtree(folder, ignore_errors=True)


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
    for folder in workspaces_found(pattern="*-*-*"):
        pid = folder.name.removeprefix(WORKSPACE_PREFIX).split("-")[1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _bundle_problem(bundle: bytes, size: int, workspace: Workspace | None) -> str:
    """Why the agent's bundle cannot be kept, in a sentence ("" when it can): over
    AGENT_BUNDLE_MAX_BYTES, or not a bundle of commits this server would push
    (hosting.git.bundle_check; against the clone when this process still has it)."""
    cap = settings.AGENT_BUNDLE_MAX_BYTES
    if size > cap:
        return (
            f"The agent's commits are {size:,} bytes, more than the {cap:,} kept "
            "(AGENT_BUNDLE_MAX_BYTES)."
        )
    folder = workspace.path.parent if workspace is not None else None
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".bundle") as file:
        file.write(bundle)
        file.flush()
        try:
            bundle_check(bundle=Path(file.name), repo=workspace.path if workspace else None)
        except HostingError as exc:
            return exc.message
    return ""


def workspace_bundle_keep(
    *, task: CodingTask, outcome: ContainerOutcome, log: TaskLog, workspace: Workspace | None
) -> bool:
    """Keep the agent's commits (the bundle) on the task once checked; True when kept. A bundle
    that fails the check is not kept, and the task's page says why. Called before the task's
    end is written: a follow-up asked for then starts from them (tasks.run.chain)."""
    bundle = outcome.outputs.get(BUNDLE, b"")
    size = outcome.too_large.get(BUNDLE, len(bundle))
    if not size:
        return False
    problem = _bundle_problem(bundle, size, workspace)
    if problem:
        why = f"{problem} They were not kept: no pull request can be made from this task."
        log.note(why)
        TaskPullRequest.objects.filter(pk=task.pk).update(error=why)
        return False
    TaskPullRequest.objects.filter(pk=task.pk).update(bundle=bundle)
    return True


def workspace_pull_request_open(*, task: CodingTask, kept: bool) -> None:
    """Open the pull request of a task that succeeded with its commits kept, if asked. Then,
    whatever came of it, tell listeners the task's record is complete
    (tasks.signals.task_recorded)."""
    try:
        status = CodingTask.objects.values_list("status", flat=True).get(pk=task.pk)
        if kept and task.open_pull_request and status == TaskStatus.SUCCEEDED:
            TaskPullRequest.objects.filter(pk=task.pk).update(state=PullRequestState.PENDING)
            task_pull_request_create(task_id=task.pk)
    finally:
        task_recorded.send_robust(sender=CodingTask, task_id=task.pk)


def workspace_record(
    *, task: CodingTask, outcome: ContainerOutcome, log: TaskLog, workspace: Workspace | None
) -> None:
    """Keep the agent's commits (the bundle) on the task once checked; open the pull request
    if asked."""
    kept = workspace_bundle_keep(task=task, outcome=outcome, log=log, workspace=workspace)
    workspace_pull_request_open(task=task, kept=kept)
