"""A job lost from the queue loses nothing: a task waiting for a usage limit to reset whose
scheduled job is gone still runs after the reset, brought back by the queue's sweep of the only
process running, `manage.py run_worker` (database engine) or a Celery worker. No cron.

Real worker processes and real containers (the fake-claude image); the subscription is known to
be limited for a few seconds, so the task waits from the start without a container.
"""

import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.selectors import preferences_get
from config.celery import app
from oauth_tokens.formats import credential_input_parse
from oauth_tokens.services import credential_limit_record, credential_store
from tasks.models import CodingTask, TaskStatus
from tasks.queue import run_coding_task
from tasks.services import task_create
from tests.tasks.conftest import wait_for, worker_stop
from tests.tasks.test_workers import REDIS_URL, ROOT, worker_env

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

SETUP_TOKEN = "sk-ant-oat01-lost-jobs-setup-token-abcdefghijklmnopqrst"
DATABASE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
CELERY = {
    "default": {
        "BACKEND": "django_tasks_celery.CeleryBackend",
        "OPTIONS": {"CELERY_APP": "config.celery.app"},
    }
}


def _waiting_with_its_job_lost(user, local_repo: str, lose: Callable[[], None]) -> CodingTask:
    """Submitted while its subscription is limited (for 5 s more) and run once, as a worker
    runs it: it waits for the reset. Then every job that would bring it back is lost."""
    credential = credential_store(owner=user, parsed=credential_input_parse(raw=SETUP_TOKEN))
    preferences = preferences_get(user=user)
    preferences.use_oauth = True
    preferences.save()
    reset = timezone.now() + timedelta(seconds=5)
    credential_limit_record(
        credential_id=credential.pk,
        status="rejected",
        resets_at=reset,
        window="five_hour",
        utilization=1.0,
    )
    task = task_create(owner=user, repo_url=local_repo, prompt="after the reset MODIFY:keep.txt")
    run_coding_task.call(task.pk)
    task.refresh_from_db()
    assert task.status == TaskStatus.WAITING, (task.error_message, task.log)
    assert task.requeue_at is not None
    assert task.requeue_at >= reset
    lose()
    return task


def _runs_after_the_reset(task: CodingTask, worker: subprocess.Popen) -> None:
    try:
        wait_for(lambda: CodingTask.objects.get(pk=task.pk).is_finished, timeout=120)
    finally:
        output = worker_stop(worker)
    done = CodingTask.objects.get(pk=task.pk)
    assert done.status == TaskStatus.SUCCEEDED, (done.error_message, done.log, output[-3000:])
    assert done.started_at is not None
    assert task.requeue_at is not None
    assert done.started_at >= task.requeue_at  # not before the reset
    assert done.limit.waits == 1
    assert done.auth_method == "oauth"
    assert "modified by fake-claude" in done.diff


def test_a_waiting_task_whose_job_was_lost_resumes_with_only_run_worker(
    agent_settings, user, local_repo, docker_host, gateway_socket_root
):
    agent_settings.TASKS = DATABASE
    agent_settings.AGENT_LIMIT_JITTER_SECONDS = 1

    def lose() -> None:
        jobs = DBTaskResult.objects.filter(task_path="tasks.queue.run_coding_task")
        resume = CodingTask.objects.get().requeue_at
        assert resume is not None
        assert jobs.filter(run_after=resume).exists()  # the resume was scheduled; now it is gone
        jobs.delete()

    task = _waiting_with_its_job_lost(user, local_repo, lose)
    assert not DBTaskResult.objects.exists()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--processes", "1"],
        cwd=ROOT,
        env=worker_env(
            docker_host,
            TASKS_ENGINE="database",
            AGENT_GATEWAY_SOCKET_ROOT=gateway_socket_root,
            AGENT_RECOVERY_SWEEP_SECONDS="1",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    _runs_after_the_reset(task, worker)


@pytest.mark.slow
def test_a_waiting_task_whose_job_was_lost_resumes_with_only_a_celery_worker(
    agent_settings, user, local_repo, docker_host, gateway_socket_root
):
    broker = redis.Redis.from_url(REDIS_URL)
    try:
        broker.flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at 127.0.0.1:6379 is needed for the Celery path: {exc}")
    app.conf.update(broker_url=REDIS_URL, result_backend=REDIS_URL)
    agent_settings.CELERY_BROKER_URL = agent_settings.CELERY_RESULT_BACKEND = REDIS_URL
    agent_settings.TASKS = CELERY
    agent_settings.AGENT_LIMIT_JITTER_SECONDS = 1

    def lose() -> None:
        queue = agent_settings.CELERY_TASK_DEFAULT_QUEUE
        assert broker.llen(queue) == 2  # the first run's job and the resume (eta)
        broker.flushdb()

    task = _waiting_with_its_job_lost(user, local_repo, lose)
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo"),
            *("--loglevel", "INFO", "--without-gossip", "--without-mingle"),
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=worker_env(
            docker_host,
            TASKS_ENGINE="celery",
            CELERY_BROKER_URL=REDIS_URL,
            CELERY_RESULT_BACKEND=REDIS_URL,
            AGENT_GATEWAY_SOCKET_ROOT=gateway_socket_root,
            AGENT_RECOVERY_SWEEP_SECONDS="1",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    _runs_after_the_reset(task, worker)
