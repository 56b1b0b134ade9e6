import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from accounts.selectors import preferences_get
from tasks.models import CodingTask, TaskLimit, TaskPullRequest, TaskRuntime, TaskUsage
from tasks.run import runner
from tasks.run.containers import INSTANCE_LABEL, instance_id


@pytest.fixture(scope="session")
def gateway_socket_root() -> Iterator[str]:
    """A short folder for the tasks' gateway sockets (a socket path has ~100 bytes)."""
    root = tempfile.mkdtemp(prefix="crgw-", dir="/tmp")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def agent_settings(settings, docker_host, test_image, gateway_socket_root, monkeypatch):
    """Tasks run in the fake-claude image on the project's Docker engine, with no network but
    their gateway."""
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    settings.AGENT_IMAGE = test_image
    settings.AGENT_NETWORK_MODE = "none"
    settings.AGENT_GATEWAY_SOCKET_ROOT = gateway_socket_root
    settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = []
    settings.AGENT_ALLOW_LOCAL_REPOS = True
    settings.AGENT_LOCAL_REPOS_ROOT = tempfile.gettempdir()
    settings.AGENT_TIMEOUT_SECONDS = 120
    settings.AGENT_EXTRA_ENV = {}
    return settings


@pytest.fixture
def queued_only(settings):
    """Tasks and follow-ups stay queued (nothing runs them), within limits of 2 running and 3
    queued per user, with messages to running agents on."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    settings.AGENT_MAX_RUNNING_TASKS_PER_USER = 2
    settings.AGENT_MAX_QUEUED_TASKS_PER_USER = 3
    settings.AGENT_MESSAGES = True
    return settings


@pytest.fixture
def local_repo(tmp_path) -> str:
    """file:// URL of a bare repository with three files and a `feature` branch."""
    src, bare = tmp_path / "src", tmp_path / "repo.git"
    src.mkdir()
    (src / "README.md").write_text("# Demo\n")
    (src / "old.txt").write_text("to be deleted\n")
    (src / "keep.txt").write_text("line one\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(src)], check=True)
    subprocess.run([*git, "-C", str(src), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(src), "commit", "-q", "-m", "initial"], check=True)
    subprocess.run([*git, "-C", str(src), "branch", "feature"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True)
    bare.chmod(0o755)
    return f"file://{bare}"


@pytest.fixture
def placeholders(monkeypatch) -> list[str]:
    """The placeholders the runner made, in order (still random: the real function runs)."""
    made: list[str] = []
    real = runner.placeholder_new

    def recording() -> str:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(runner, "placeholder_new", recording)
    return made


def set_api_key(user, key: str) -> None:
    prefs = preferences_get(user=user)
    prefs.api_key, prefs.api_key_last4 = key, key[-4:]
    prefs.save()


def auth_report(task: CodingTask) -> dict:
    """What the fake claude saw inside the container (prompt keyword REPORT_AUTH)."""
    return json.loads(task.result_text)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class InspectWatcher:
    """Captures `docker inspect` of the task's container while it runs: this installation's
    containers only, never another checkout's running on the same engine."""

    def __init__(self, client, label: str | None = None) -> None:
        self.client = client
        self.label = label or f"{INSTANCE_LABEL}={instance_id()}"
        self.inspected: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "InspectWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for container in self.client.containers.list(filters={"label": self.label}):
                # The container may be removed between list and inspect.
                with contextlib.suppress(Exception):
                    self.inspected.append(self.client.api.inspect_container(container.id))
            time.sleep(0.1)

    @property
    def text(self) -> str:
        return json.dumps(self.inspected)


def worker_stop(process: subprocess.Popen) -> str:
    """Stop a worker started in a session of its own (start_new_session=True) as an operator's
    SIGTERM does; what is still running 40 s later, the whole process group (a worker of its
    own holding its output open too), is killed. Its output."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=30)
    return output or ""


def wait_for(predicate, timeout: float = 60, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def db_env_for_subprocess() -> dict[str, str]:
    """DATABASE_URL of the test database, for worker processes started by a test."""
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        return {"DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"}
    return {"DATABASE_URL": f"sqlite:///{Path(s['NAME'])}"}


def task_make(
    owner,
    *,
    usage: dict | None = None,
    limit: dict | None = None,
    pull_request: dict | None = None,
    runtime: dict | None = None,
    **values,
) -> CodingTask:
    """A task row as a worker leaves it: its own columns, and those of its usage, limit,
    pull-request and runtime rows."""
    values.setdefault("repo_url", "https://github.com/a/b.git")
    values.setdefault("prompt", "p")
    task = CodingTask.objects.create(owner=owner, **values)
    for model, columns in (
        (TaskUsage, usage),
        (TaskLimit, limit),
        (TaskPullRequest, pull_request),
        (TaskRuntime, runtime),
    ):
        model.objects.filter(pk=task.pk).update(**(columns or {}))
    return CodingTask.objects.get(pk=task.pk)
