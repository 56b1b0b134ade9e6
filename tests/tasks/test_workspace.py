"""The task's repository on the worker: cloned with the owner's token only for the configured
GitHub, its commits kept from the container's bundle, the pull request opened when asked."""

import os
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from hosting.errors import HostingError, Refusal
from hosting.models import GitHubConnection
from tasks.models import CodingTask, PullRequestState, TaskStatus
from tasks.run.containers import ContainerOutcome
from tasks.run.log import TaskLog
from tasks.run.workspace import (
    WORKSPACE_PREFIX,
    workspace_prepare,
    workspace_record,
    workspace_remove,
    workspaces_stale_remove,
)
from tests.hosting.conftest import agent_commit

pytestmark = pytest.mark.django_db


@pytest.fixture
def connected(github, user):
    GitHubConnection.objects.create(owner=user, token=github.token, token_last4="abcd", login="o")
    return github


def test_private_repository_cloned_with_the_owners_token(connected, user):
    task = CodingTask.objects.create(owner=user, repo_url=connected.url, prompt="p")
    workspace = workspace_prepare(task=task)
    try:
        # Only .git: the container checks the files out.
        assert (workspace.path / ".git").is_dir()
        assert not (workspace.path / "keep.txt").exists()
        listed = subprocess.run(
            ["git", "-C", str(workspace.path), "ls-tree", "--name-only", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert "keep.txt" in listed
        assert workspace.base_branch == "main"
        task.refresh_from_db()
        assert task.pull_request.start_commit == workspace.start_commit
        assert task.pull_request.base_branch == "main"
    finally:
        workspace_remove(task_id=task.pk)
    assert not workspace.path.exists()


def test_the_token_goes_to_the_configured_github_only(connected, user, settings):
    # The same loopback server, but this server's GitHub is said to live elsewhere.
    settings.GITHUB_API_URL = "https://api.github.com"
    task = CodingTask.objects.create(owner=user, repo_url=connected.url, prompt="p")
    with pytest.raises(HostingError) as caught:
        workspace_prepare(task=task)
    assert caught.value.kind == Refusal.NO_TOKEN
    assert connected.git.requests
    assert not any(r.token_given for r in connected.git.requests)


def test_bundle_kept_and_pull_request_opened_when_asked(connected, user, tmp_path):
    task = CodingTask.objects.create(
        owner=user,
        repo_url=connected.url,
        prompt="Add a file",
        open_pull_request=True,
        status=TaskStatus.SUCCEEDED,
    )
    workspace = workspace_prepare(task=task)
    bundle = agent_commit(workspace.path, tmp_path / "w", message="Add a file", files={"f": "f"})
    outcome = ContainerOutcome("c", 0, outputs={"changes.bundle": bundle.read_bytes()})
    workspace_record(
        task=task, outcome=outcome, log=TaskLog(task_id=task.pk, secrets=[], max_bytes=9999)
    )
    task.refresh_from_db()
    assert task.pull_request.bundle, task.pull_request.error
    assert task.pull_request.state == PullRequestState.OPENED, task.pull_request.error
    assert task.pull_request.branch == f"claude-runner/{task.pk}-add-a-file"
    assert connected.git.log("acme/app", task.pull_request.branch)[0] == "Add a file"


def test_too_large_a_bundle_is_noted_not_kept(connected, user, settings):
    settings.AGENT_BUNDLE_MAX_BYTES = 10
    task = CodingTask.objects.create(owner=user, repo_url=connected.url, prompt="p")
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=9999)
    workspace_record(
        task=task, outcome=ContainerOutcome("c", 0, outputs={"changes.bundle": b"x" * 11}), log=log
    )
    task.refresh_from_db()
    assert task.pull_request.bundle is None
    assert "not kept" in log.text


def test_clones_left_by_dead_workers_are_removed(connected, user):
    child = subprocess.Popen(["true"])
    child.wait()
    tmp = Path(tempfile.gettempdir())
    stale = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}999999-{child.pid}-", dir=tmp))
    (stale / "work").mkdir()
    mine = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}999998-{os.getpid()}-", dir=tmp))
    try:
        assert workspaces_stale_remove() >= 1
        assert not stale.exists()
        assert mine.exists()
    finally:
        workspace_remove(task_id=999998)
    assert not mine.exists()


def test_a_folder_another_user_prepared_never_receives_the_clone(
    connected, user, tmp_path, monkeypatch
):
    """A local user who creates the clone folders' old shared root first (mode 0777), with a
    symbolic link where a task's folder goes, gets nothing: each clone is in a fresh private
    folder of its own."""
    task = CodingTask.objects.create(owner=user, repo_url=connected.url, prompt="p")
    trap = tmp_path / "trap"
    trap.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir(mode=0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    shared = tmp / "claude-runner-workspaces"
    shared.mkdir()
    shared.chmod(0o777)
    planted = [
        shared / f"task-{task.pk}-{os.getpid()}",
        tmp / f"{WORKSPACE_PREFIX}{task.pk}-{os.getpid()}-",
    ]
    for link in planted:
        link.symlink_to(trap)
    try:
        workspace = workspace_prepare(task=task)
        folder = workspace.path.parent
        info = folder.lstat()
        assert stat.S_ISDIR(info.st_mode)
        assert info.st_uid == os.geteuid()
        assert stat.S_IMODE(info.st_mode) == 0o700
        assert folder.parent == tmp
        assert (workspace.path / ".git").is_dir()
        assert list(trap.iterdir()) == []
        # Removing the task's clone leaves the planted links (and what they point to) alone.
        workspace_remove(task_id=task.pk)
        assert not folder.exists()
        assert all(link.is_symlink() for link in planted)
        assert trap.is_dir()
    finally:
        workspace_remove(task_id=task.pk)
