"""Which host uid a task's container runs as: one from AGENT_UID_RANGE that no host account
or group has, different for tasks next to each other; a bad range fails the task, saying why.
The socket folder of a worker that may not change owners stays reachable, and the log says so."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.runtime import placeholder_new
from oauth_tokens.models import AuthMethod, AuthSource
from oauth_tokens.services import AuthResolution
from tasks.models import CodingTask
from tasks.run.agent_user import AgentUserUnavailable, agent_uid_for_task, agent_uid_range
from tasks.run.containers import AGENT_UID
from tasks.run.gateway import GATEWAY_SOCKET_NAME, socket_dir_give, task_gateway_open
from tasks.run.log import TaskLog

NOBODY = 65534  # nobody and nogroup on Debian


def test_neighbouring_tasks_get_different_uids_from_the_range(settings):
    settings.AGENT_UID_RANGE = "200000-265535"
    uids = {agent_uid_for_task(task_id=task_id) for task_id in range(1, 101)}
    assert len(uids) == 100
    assert all(200000 <= uid <= 265535 for uid in uids)
    assert AGENT_UID not in uids


def test_a_uid_a_host_account_has_is_skipped(settings):
    settings.AGENT_UID_RANGE = f"{NOBODY}-{NOBODY + 1}"
    # The task's place in the range is nobody's uid: the next one is taken instead.
    assert agent_uid_for_task(task_id=0) == NOBODY + 1
    assert agent_uid_for_task(task_id=1) == NOBODY + 1


def test_a_range_of_host_accounts_only_fails_the_task_saying_why(settings):
    settings.AGENT_UID_RANGE = f"{NOBODY}-{NOBODY}"
    with pytest.raises(AgentUserUnavailable, match="No free uid"):
        agent_uid_for_task(task_id=7)


def test_an_empty_range_runs_as_the_images_own_user(settings):
    settings.AGENT_UID_RANGE = " "
    assert agent_uid_for_task(task_id=7) == AGENT_UID


@pytest.mark.parametrize(
    "value",
    ["abc", "5", "200000", "300000-200000", "0-10", "1000-2000", "²-9", "٢٠٠٠٠٠-٢٠٠٠٠١",
     "-1-5", "200000-99999999999", "200000 - x", "2" * 5000],
)  # fmt: skip
def test_a_bad_range_is_refused_with_its_rule(settings, value):
    settings.AGENT_UID_RANGE = value
    with pytest.raises(AgentUserUnavailable, match="first-last") as caught:
        agent_uid_for_task(task_id=1)
    assert len(str(caught.value)) < 300


@given(st.text(max_size=30))
def test_any_range_text_gives_a_range_or_says_why(text):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.conf.settings.AGENT_UID_RANGE", text, raising=False)
        try:
            found = agent_uid_range()
        except AgentUserUnavailable:
            return
    assert found is None or 1000 < found[0] <= found[1] < 2**31 - 1


class _Notes(TaskLog):
    """The task's notes, kept here: the forked child has no database of its own."""

    notes: list[str]

    def note(self, line: str) -> None:
        self.notes = [*getattr(self, "notes", []), line]


# The child only changes its uid, makes a folder and writes to a pipe; logging resets its locks
# in a forked child, so other threads of the test process cannot hold it up.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_worker_that_cannot_change_owners_keeps_the_socket_reachable_and_says_so():
    """Run as nobody in a child process: the folder cannot be handed over, so it stays 0711
    (reachable by name only) and the task's log and the worker's log say why."""
    shared = Path(tempfile.mkdtemp())  # nobody can reach it (pytest's tmp_path is root's)
    shared.chmod(0o777)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            folder = shared / "t1"
            folder.mkdir(mode=0o700)
            log = _Notes(task_id=1, secrets=[], max_bytes=9999)
            owner = socket_dir_give(folder, 200001, log)
            mode = stat.S_IMODE(folder.stat().st_mode)
            os.write(write, f"{owner}|{mode:o}|{' '.join(log.notes)}".encode())
        except Exception as exc:  # noqa: BLE001 (the parent shows it)
            os.write(write, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        reported = answer.read()
    assert reported.count("|") >= 2, reported
    given_to, folder_mode, text = reported.split("|", 2)
    os.waitpid(child, 0)
    shutil.rmtree(shared)
    assert given_to == "None"
    assert folder_mode == "711"
    assert "open to every local user" in text
    assert "run the worker as root" in text


CONNECT = """
import socket, sys
try:
    socket.socket(socket.AF_UNIX).connect(sys.argv[1])
    print("ok")
except OSError as exc:
    print(type(exc).__name__)
"""


# Any other user may run the system's Python; the project's virtualenv may be private.
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable


def _connect_as(uid: int, path: Path) -> str:
    """Connect to the Unix socket at path from a process running as uid: "ok" or the error."""
    done = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", CONNECT, str(path)],
        user=uid,
        group=uid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        cwd="/",
    )
    return done.stdout.strip() or done.stderr[-300:]


@pytest.mark.django_db
def test_only_the_tasks_uid_may_connect_to_its_socket_on_the_host(user):
    task = CodingTask.objects.create(owner=user, repo_url="https://github.com/a/b", prompt="p")
    uid = agent_uid_for_task(task_id=task.pk)
    root = Path(tempfile.mkdtemp())
    root.chmod(0o711)
    auth = AuthResolution(
        method=AuthMethod.API_KEY,
        source=AuthSource.ENVIRONMENT,
        reason="test",
        api_key="sk-ant-api03-socket-owner-host-test",
    )
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=9999)
    try:
        with task_gateway_open(task, root, auth, placeholder_new(), log, uid) as (_, folder):
            path = folder / GATEWAY_SOCKET_NAME
            answers = {who: _connect_as(who, path) for who in (uid, uid + 1, AGENT_UID, NOBODY)}
    finally:
        shutil.rmtree(root)
    assert answers == {
        uid: "ok",
        uid + 1: "PermissionError",
        AGENT_UID: "PermissionError",
        NOBODY: "PermissionError",
    }
