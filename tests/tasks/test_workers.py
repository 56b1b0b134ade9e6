"""Real worker processes: the database worker, Celery on Redis, and recovery after a kill."""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import docker
import pytest
import redis

from config.celery import app
from tasks.models import CodingTask, TaskStatus
from tasks.recovery import tasks_recover
from tasks.run.containers import INSTANCE_LABEL, container_labels
from tasks.services import task_create
from tests.fakes.docker_env import TEST_IMAGE
from tests.tasks.conftest import db_env_for_subprocess, set_api_key, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
# One Redis database for every Celery test (TEST_REDIS_URL: another one, for a second checkout
# testing on the same machine); the tests marked slow run one after another.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def worker_env(docker_host: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **db_env_for_subprocess(),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "TEST_REAL_TASKS": "1",
        "DOCKER_HOST": docker_host,
        "AGENT_IMAGE": TEST_IMAGE,
        "AGENT_NETWORK_MODE": "none",
        "AGENT_ALLOW_LOCAL_REPOS": "true",
        "AGENT_LOCAL_REPOS_ROOT": tempfile.gettempdir(),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def test_database_worker_runs_a_submitted_task(agent_settings, user, local_repo, docker_host):
    agent_settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    set_api_key(user, "sk-ant-api03-db-worker-key-0060")
    task = task_create(owner=user, repo_url=local_repo, prompt="through the db worker")
    assert CodingTask.objects.get(pk=task.pk).status == TaskStatus.QUEUED
    worker = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay"],
        cwd=ROOT,
        env=worker_env(docker_host, TASKS_ENGINE="database"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, worker.stderr[-2000:])
    assert any(f["path"] == "AGENT_NOTES.md" for f in task.changed_files)


@pytest.mark.slow
def test_celery_worker_on_redis_runs_a_submitted_task(
    agent_settings, user, local_repo, docker_host
):
    try:
        redis.Redis.from_url(REDIS_URL).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at 127.0.0.1:6379 is needed for the Celery path: {exc}")
    agent_settings.CELERY_BROKER_URL = REDIS_URL
    agent_settings.CELERY_RESULT_BACKEND = REDIS_URL
    env = worker_env(
        docker_host,
        TASKS_ENGINE="celery",
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_RESULT_BACKEND=REDIS_URL,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        app.conf.update(broker_url=REDIS_URL, result_backend=REDIS_URL)
        agent_settings.TASKS = {
            "default": {
                "BACKEND": "django_tasks_celery.CeleryBackend",
                "OPTIONS": {"CELERY_APP": "config.celery.app"},
            }
        }
        set_api_key(user, "sk-ant-api03-celery-key-0061")
        task = task_create(owner=user, repo_url=local_repo, prompt="through celery")
        wait_for(lambda: CodingTask.objects.get(pk=task.pk).is_finished, timeout=90, interval=0.5)
        task.refresh_from_db()
        assert task.status == TaskStatus.SUCCEEDED, task.error_message
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
    assert "run_coding_task" in output  # the Celery worker, not this process, ran it


def test_recovery_after_a_killed_worker(agent_settings, user, local_repo, docker_host):
    agent_settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    set_api_key(user, "sk-ant-api03-recovery-key-0062")
    task = task_create(owner=user, repo_url=local_repo, prompt="SLEEP:120")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-startup-delay"],
        cwd=ROOT,
        env=worker_env(docker_host, TASKS_ENGINE="database"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = docker.from_env(environment={"DOCKER_HOST": docker_host})
    try:
        running = wait_for(
            lambda: (
                CodingTask.objects.filter(pk=task.pk, status="running")
                .exclude(runtime__container_id="")
                .first()
            )
        )
        worker.kill()  # SIGKILL: no cleanup at all
        worker.wait(timeout=10)
        assert client.containers.get(running.runtime.container_id).status == "running"

        # Someone else's container, another installation's, and a leftover of ours for a
        # finished task.
        stranger = client.containers.create(
            "claude-runner-agent:test", command=["true"], labels={"app": "something-else"}
        )
        finished = CodingTask.objects.create(
            owner=user, repo_url=local_repo, prompt="old", status=TaskStatus.SUCCEEDED
        )
        other_install = client.containers.create(
            "claude-runner-agent:test",
            labels={**container_labels(task_id=finished.pk), INSTANCE_LABEL: "another-install"},
        )
        leftover = client.containers.create(
            "claude-runner-agent:test",
            labels=container_labels(task_id=finished.pk),
        )

        # And a running task whose worker died before its container existed.
        no_container = CodingTask.objects.create(
            owner=user,
            repo_url=local_repo,
            prompt="never started",
            status=TaskStatus.RUNNING,
            runner=running.runner,
            engine_id=running.engine_id,
        )

        report = tasks_recover()  # what a starting worker does first

        # The killed worker's task is taken over (its container followed), not failed; a
        # cancel reaches the follower like any running task's worker.
        assert report.tasks_followed == 1
        assert report.tasks_failed == 1
        assert report.containers_removed == 1
        task.refresh_from_db()
        assert task.status == TaskStatus.RUNNING
        assert task.runner != running.runner
        CodingTask.objects.filter(pk=task.pk).update(cancel_requested=True)
        for follower in report.followers:
            follower.join(timeout=60)
        task.refresh_from_db()
        assert task.status == TaskStatus.CANCELLED, task.error_message
        assert "taken over" in task.log
        no_container.refresh_from_db()
        assert no_container.status == TaskStatus.FAILED
        assert "interrupted" in no_container.error_message
        assert "Submit it again" in no_container.error_message
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(running.runtime.container_id)
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(str(leftover.id))
        assert client.containers.get(str(stranger.id))  # never touch what is not ours
        assert client.containers.get(str(other_install.id))
        stranger.remove(force=True)
        other_install.remove(force=True)
    finally:
        if worker.poll() is None:
            worker.kill()
