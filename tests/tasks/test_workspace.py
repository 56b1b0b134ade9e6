"""The task's repository on the worker: cloned with the owner's token only for the configured
GitHub, its commits kept from the container's bundle, the pull request opened when asked."""

import os
import stat
import subprocess
import tarfile
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from django.urls import reverse

from hosting.errors import HostingError, Refusal
from hosting.models import GitHubConnection
from tasks.models import CodingTask, PullRequestState, TaskStatus
from tasks.run.archives import outputs_untar
from tasks.run.containers import OUTPUT_FILES, OUTPUT_WHOLE_ONLY, ContainerOutcome
from tasks.run.log import TaskLog
from tasks.run.workspace import (
    WORKSPACE_PREFIX,
    workspace_clone,
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
    workspace = workspace_clone(task=task).finished()
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
        workspace_clone(task=task).finished()
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
    workspace = workspace_clone(task=task).finished()
    bundle = agent_commit(workspace.path, tmp_path / "w", message="Add a file", files={"f": "f"})
    outcome = ContainerOutcome("c", 0, outputs={"changes.bundle": bundle.read_bytes()})
    workspace_record(
        task=task,
        outcome=outcome,
        log=TaskLog(task_id=task.pk, secrets=[], max_bytes=9999),
        workspace=workspace,
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
        task=task,
        outcome=ContainerOutcome("c", 0, outputs={"changes.bundle": b"x" * 11}),
        log=log,
        workspace=None,
    )
    task.refresh_from_db()
    assert task.pull_request.bundle is None
    assert "not kept" in log.text
    assert "are 11 bytes, more than the 10 kept" in task.pull_request.error


def test_clones_left_by_dead_workers_are_removed(connected, user, tmp_path, monkeypatch):
    # A temporary folder of this test's own: every clone on the other test processes sweeps
    # the shared one too, and would remove the dead worker's folder first.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    child = subprocess.Popen(["true"])
    child.wait()
    tmp = Path(tempfile.gettempdir())
    stale = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}999999-{child.pid}-", dir=tmp))
    (stale / "work").mkdir()
    mine = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}999998-{os.getpid()}-", dir=tmp))
    try:
        assert workspaces_stale_remove() == 1
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
        workspace = workspace_clone(task=task).finished()
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


def _record(task, outcome, workspace):
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=99999)
    workspace_record(task=task, outcome=outcome, log=log, workspace=workspace)
    task.refresh_from_db()
    return log


@pytest.mark.parametrize(
    "bundle",
    [
        os.urandom(1024 * 1024),  # random bytes
        b"# v2 git bundle\n" + b"0" * 40 + b" HEAD\n\nPACK" + os.urandom(4096),  # a fake pack
        b"# v2 git bundle\n" + "\x1b[31m\u202e".encode() * 9000,  # a header that never ends
    ],
    ids=["random", "fake-pack", "endless-header"],
)
def test_a_bundle_that_is_not_valid_is_not_kept_and_the_page_says_why(
    connected, user, user_client, bundle
):
    task = CodingTask.objects.create(
        owner=user,
        repo_url=connected.url,
        prompt="p",
        open_pull_request=True,
        status=TaskStatus.SUCCEEDED,
    )
    workspace = workspace_clone(task=task).finished()
    try:
        outcome = ContainerOutcome("c", 0, outputs={"changes.bundle": bundle})
        log = _record(task, outcome, workspace)
    finally:
        workspace_remove(task_id=task.pk)
    assert task.pull_request.bundle is None
    assert task.pull_request.state == PullRequestState.NONE  # no push was tried
    assert task.pull_request.error.startswith("The agent's commits could not be used: ")
    assert task.pull_request.error.endswith(
        "They were not kept: no pull request can be made from this task."
    )
    assert "not kept" in log.text
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "They were not kept: no pull request can be made" in page
    assert "nothing to propose" not in page


def test_a_bundle_for_another_repository_fails_git_bundle_verify(connected, user, tmp_path):
    """A well-formed bundle whose commits build on a commit the clone does not have."""
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", "-b", "main", str(other)], check=True)
    git = ["git", "-C", str(other), "-c", "user.name=A", "-c", "user.email=a@example.invalid"]
    for name in ("one", "two"):
        (other / name).write_text(name)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", name], check=True)
    bundle = tmp_path / "b.bundle"
    subprocess.run([*git, "bundle", "create", "-q", str(bundle), "HEAD~1..HEAD"], check=True)
    task = CodingTask.objects.create(owner=user, repo_url=connected.url, prompt="p")
    workspace = workspace_clone(task=task).finished()
    try:
        outcome = ContainerOutcome("c", 0, outputs={"changes.bundle": bundle.read_bytes()})
        _record(task, outcome, workspace)
    finally:
        workspace_remove(task_id=task.pk)
    assert task.pull_request.bundle is None
    assert "not valid for the cloned revision" in task.pull_request.error


def test_a_bundle_over_the_cap_is_refused_by_its_size_alone(connected, user, settings):
    """What the container left unread (tasks.run.containers: over the cap, only its size)."""
    task = CodingTask.objects.create(owner=user, repo_url=connected.url, prompt="p")
    outcome = ContainerOutcome("c", 0, too_large={"changes.bundle": 52 * 1024 * 1024})
    _record(task, outcome, None)
    assert task.pull_request.bundle is None
    assert "54,525,952 bytes, more than the" in task.pull_request.error


def _tar_stream(big: int, chunk: int = 1024 * 1024):
    """A tar of out/ as Docker streams it: a big random changes.bundle, then result.json,
    made as it is read (never whole in memory)."""
    info = tarfile.TarInfo("out/changes.bundle")
    info.size = big
    yield info.tobuf(format=tarfile.USTAR_FORMAT)
    left = big
    while left:
        size = min(chunk, left)
        yield os.urandom(size)
        left -= size
    yield b"\0" * (-big % 512)
    small = tarfile.TarInfo("out/result.json")
    small.size = 2
    yield small.tobuf(format=tarfile.USTAR_FORMAT) + b"{}" + b"\0" * 510
    yield b"\0" * 1024


def test_a_bundle_over_the_cap_is_never_read_into_memory():
    big = 52 * 1024 * 1024
    tracemalloc.start()
    try:
        files, too_large = outputs_untar(
            _tar_stream(big),
            wanted=OUTPUT_FILES,
            max_bytes=50 * 1024 * 1024,
            whole_only=OUTPUT_WHOLE_ONLY,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert too_large == {"changes.bundle": big}
    assert "changes.bundle" not in files
    assert files["result.json"] == b"{}"
    assert peak < 8 * 1024 * 1024
