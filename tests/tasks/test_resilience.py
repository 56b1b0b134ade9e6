"""A worker killed mid-task, and a Docker engine that goes away: the task still ends well.

Real processes (run_worker, db_worker), real containers (the fake-claude image). The engine is
made unreachable on the client side only, never stopped (others share it): the workers talk to
it through a socket of this test's own, a socat relay that is started and stopped.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import docker
import pytest
import redis
from django.utils import timezone

from config.celery import app
from tasks.models import CodingTask, TaskStatus, WaitReason
from tasks.run.runner import task_run
from tasks.services import task_create
from tasks.waits.engine import engine_retry_delay
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.tasks.conftest import set_api_key, wait_for, worker_stop
from tests.tasks.test_workers import REDIS_URL, ROOT, worker_env

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


def _children(pid: int) -> set[int]:
    """The db_worker processes whose parent is pid (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"db_worker" in cmdline:
            found.add(int(entry.name))
    return found


def _model_call_from_inside(container, placeholder: str) -> str:
    """A Messages API call made inside the container, through its relay to the task's gateway
    (what the agent does), with the task's placeholder; the raw HTTP answer."""
    body = json.dumps(
        {"model": "claude-fake-1", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )
    request = (
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"x-api-key: {placeholder}\r\nanthropic-version: 2023-06-01\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    )
    result = container.exec_run(
        ["sh", "-c", 'printf "%s" "$REQ" | socat -t 10 - TCP:127.0.0.1:8080'],
        environment={"REQ": request},
        user="1000",
    )
    return result.output.decode("utf-8", "replace")


def test_a_killed_worker_is_restarted_and_its_task_still_succeeds(
    agent_settings, user, local_repo, docker_host, gateway_socket_root
):
    """kill -9 of one db_worker under run_worker while its task runs: a new worker is started
    at once; the task is taken over (gateway back on the same socket, same placeholder and
    key), followed to its end, and succeeds with its diff."""
    agent_settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    api_key = "sk-ant-api03-takeover-key-0070"
    set_api_key(user, api_key)
    with FakeAnthropicAPI(valid_credentials={api_key}) as api:
        supervisor = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--processes", "2"],
            cwd=ROOT,
            env=worker_env(
                docker_host,
                TASKS_ENGINE="database",
                AGENT_GATEWAY_SOCKET_ROOT=gateway_socket_root,
                ANTHROPIC_API_URL=api.url,
                AGENT_RECOVERY_SWEEP_SECONDS="3600",  # only the death itself may trigger it
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        output = ""
        try:
            first_workers = wait_for(lambda: len(_children(supervisor.pid)) == 2 and True)
            assert first_workers
            task = task_create(
                owner=user, repo_url=local_repo, prompt="SLEEP:15 MODIFY:keep.txt after a kill"
            )
            running = wait_for(
                lambda: (
                    CodingTask.objects.filter(pk=task.pk, status=TaskStatus.RUNNING)
                    .exclude(runtime__container_id="")
                    .first()
                ),
                timeout=60,
            )
            victim = int(running.runner.rpartition(":")[2])
            assert victim in _children(supervisor.pid)
            os.kill(victim, signal.SIGKILL)

            # The slot is filled again at once, by a new process.
            wait_for(
                lambda: (
                    len(_children(supervisor.pid)) == 2 and victim not in _children(supervisor.pid)
                ),
                timeout=15,
            )
            # Taken over by the supervisor while the container still runs; the model API works
            # again from inside, with the task's own placeholder, on the same key.
            taken = wait_for(
                lambda: CodingTask.objects.filter(
                    pk=task.pk, runner__endswith=f":{supervisor.pid}"
                ).first(),
                timeout=15,
            )
            socket_path = Path(taken.runtime.gateway_dir) / "gateway.sock"
            wait_for(socket_path.is_socket, timeout=10)
            client = docker.from_env(environment={"DOCKER_HOST": docker_host})
            container = client.containers.get(running.runtime.container_id)
            assert container.status == "running"
            answer = _model_call_from_inside(container, taken.runtime.gateway_placeholder)
            assert answer.startswith("HTTP/1.1 200"), answer[:500]
            assert [r.api_key for r in api.authenticated_messages_requests()] == [api_key]

            wait_for(lambda: CodingTask.objects.get(pk=task.pk).is_finished, timeout=90)
        finally:
            output = worker_stop(supervisor)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, output[-3000:])
    paths = {f["path"] for f in task.changed_files}
    assert {"AGENT_NOTES.md", "keep.txt"} <= paths
    assert "modified by fake-claude" in task.diff
    assert "taken over" in task.log
    assert "done (fake)" in task.log
    assert task.runtime.gateway_placeholder == ""  # gone with the task's socket
    assert not Path(task.runtime.gateway_dir).exists()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(running.runtime.container_id)
    assert f"pid {victim}" in output  # run_worker said which worker died


@pytest.fixture
def engine_relay() -> Iterator["EngineRelay"]:
    relay = EngineRelay()
    yield relay
    relay.stop()
    shutil.rmtree(relay.folder, ignore_errors=True)


class EngineRelay:
    """A Docker socket of the test's own: unreachable until start(), a socat relay to the
    shared engine while started. Stopping it is an engine outage for whoever uses it."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="engine-", dir="/tmp"))
        self.path = self.folder / "docker.sock"
        self.url = f"unix://{self.path}"
        self.process: subprocess.Popen | None = None

    def start(self, engine: str) -> None:
        if shutil.which("socat") is None:
            pytest.fail("socat is needed (apt-get install socat)")
        self.process = subprocess.Popen(
            ["socat", f"UNIX-LISTEN:{self.path},fork", f"UNIX-CONNECT:{engine}"]
        )
        wait_for(self.path.is_socket, timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.path.unlink(missing_ok=True)


def test_a_queued_task_waits_for_the_engine_and_runs_when_it_is_back(
    agent_settings, user, local_repo, docker_host, engine_relay, client
):
    agent_settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    set_api_key(user, "sk-ant-api03-engine-wait-key-0071")
    assert docker_host.startswith("unix://")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--interval", "0.2"],
        cwd=ROOT,
        env=worker_env(
            engine_relay.url,
            TASKS_ENGINE="database",
            AGENT_GATEWAY_SOCKET_ROOT=agent_settings.AGENT_GATEWAY_SOCKET_ROOT,
            AGENT_ENGINE_RETRY_SECONDS="1",
            AGENT_ENGINE_RETRY_MAX_SECONDS="2",
            AGENT_ENGINE_MAX_WAIT="120",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        task = task_create(owner=user, repo_url=local_repo, prompt="after the engine came back")
        waiting = wait_for(
            lambda: (
                CodingTask.objects.filter(pk=task.pk, status=TaskStatus.QUEUED)
                .filter(wait_reason=WaitReason.ENGINE)
                .first()
            ),
            timeout=30,
        )
        assert waiting.waiting_for_engine
        assert waiting.error_message.startswith("Waiting for the container engine: Cannot reach")
        client.force_login(user)
        page = client.get(f"/tasks/{task.pk}/").content.decode()
        assert "waiting for the container engine" in page
        first_retry = waiting.requeue_at
        # It keeps trying while the engine is away, and stays waiting.
        wait_for(lambda: CodingTask.objects.get(pk=task.pk).requeue_at != first_retry, timeout=15)
        time.sleep(2)
        assert CodingTask.objects.get(pk=task.pk).status == TaskStatus.QUEUED

        engine_relay.start(docker_host.removeprefix("unix://"))  # the engine is back
        wait_for(lambda: CodingTask.objects.get(pk=task.pk).is_finished, timeout=90)
    finally:
        output = worker_stop(worker)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, output[-3000:])
    assert task.waiting_since is None
    assert task.wait_reason == WaitReason.NONE
    assert task.error_message == ""
    assert any(f["path"] == "AGENT_NOTES.md" for f in task.changed_files)


@pytest.mark.django_db
def test_the_wait_for_the_engine_ends_failed_after_the_longest_wait(
    settings, user, local_repo, monkeypatch, tmp_path
):
    """No engine at all (a socket path nobody listens on): each try re-queues the task with a
    growing delay; once AGENT_ENGINE_MAX_WAIT has passed it fails with the engine's message."""

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    settings.AGENT_ENGINE_MAX_WAIT = 600
    settings.AGENT_ENGINE_RETRY_SECONDS = 5
    settings.AGENT_ENGINE_RETRY_MAX_SECONDS = 60
    set_api_key(user, "sk-ant-api03-no-engine-key-0072")
    task = CodingTask.objects.create(owner=user, repo_url=local_repo, prompt="no engine")

    task_run(task_id=task.pk)
    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED
    assert task.waiting_for_engine
    assert task.started_at is None
    assert task.runner == ""
    assert task.requeue_at is not None
    assert task.waiting_since is not None
    assert task.wait_reason == WaitReason.ENGINE
    assert 4 <= (task.requeue_at - task.waiting_since).total_seconds() <= 6
    assert task.auth_method == ""  # no credential was touched for a run that cannot happen

    # Later tries wait about as long as already waited, at most a minute.
    assert engine_retry_delay(waited=timedelta(seconds=20)) == timedelta(seconds=20)
    assert engine_retry_delay(waited=timedelta(seconds=500)) == timedelta(seconds=60)

    assert task_run(task_id=task.pk) is None  # not before its retry time
    CodingTask.objects.filter(pk=task.pk).update(
        waiting_since=timezone.now() - timedelta(seconds=601), requeue_at=timezone.now()
    )
    task_run(task_id=task.pk)
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert task.error_message.startswith("Cannot reach the Docker engine")
    assert "waited 10 minutes" in task.error_message
    assert "AGENT_ENGINE_MAX_WAIT" in task.error_message


@pytest.mark.slow
def test_celery_sweep_takes_over_the_task_of_a_killed_pool_process(
    agent_settings, user, local_repo, docker_host, gateway_socket_root
):
    """Celery replaces a killed pool process by itself; its task is taken over by the worker's
    periodic sweep and still succeeds with its diff."""

    try:
        redis.Redis.from_url(REDIS_URL).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at 127.0.0.1:6379 is needed for the Celery path: {exc}")
    agent_settings.CELERY_BROKER_URL = agent_settings.CELERY_RESULT_BACKEND = REDIS_URL
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork"),
            *("--concurrency", "1", "--loglevel", "INFO", "--without-gossip"),
            *("--without-mingle", "--without-heartbeat"),
        ],
        cwd=ROOT,
        env=worker_env(
            docker_host,
            TASKS_ENGINE="celery",
            CELERY_BROKER_URL=REDIS_URL,
            CELERY_RESULT_BACKEND=REDIS_URL,
            AGENT_GATEWAY_SOCKET_ROOT=gateway_socket_root,
            AGENT_RECOVERY_SWEEP_SECONDS="2",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        app.conf.update(broker_url=REDIS_URL, result_backend=REDIS_URL)
        agent_settings.TASKS = {
            "default": {
                "BACKEND": "django_tasks_celery.CeleryBackend",
                "OPTIONS": {"CELERY_APP": "config.celery.app"},
            }
        }
        set_api_key(user, "sk-ant-api03-celery-takeover-0073")
        task = task_create(owner=user, repo_url=local_repo, prompt="SLEEP:8 MODIFY:keep.txt")
        running = wait_for(
            lambda: (
                CodingTask.objects.filter(pk=task.pk, status=TaskStatus.RUNNING)
                .exclude(runtime__container_id="")
                .first()
            ),
            timeout=60,
        )
        pool_process = int(running.runner.rpartition(":")[2])
        assert pool_process != worker.pid
        os.kill(pool_process, signal.SIGKILL)
        wait_for(
            lambda: CodingTask.objects.filter(
                pk=task.pk, runner__endswith=f":{worker.pid}"
            ).exists(),
            timeout=20,
        )
        wait_for(lambda: CodingTask.objects.get(pk=task.pk).is_finished, timeout=90)
    finally:
        output = worker_stop(worker)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, output[-3000:])
    assert "modified by fake-claude" in task.diff
    assert "taken over" in task.log
