"""Usage limits and dead credentials with the REAL Claude Code CLI (2.1.332) against the fake
Anthropic API answering as the real one does
(docs/claude-cli-contract.md#usage-limits-and-auth-failures): the task ends in the right state,
and a limited task resumes on its own."""

import json
import subprocess
import sys
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from accounts.selectors import preferences_get
from config.celery import app
from oauth_tokens.formats import credential_input_parse
from oauth_tokens.models import CredentialStatus, OAuthCredential
from oauth_tokens.services import credential_store
from tasks.models import CodingTask, TaskStatus
from tasks.services import task_create
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.fakes.docker_env import CLI_IMAGE
from tests.fakes.smtp_server import SMTPServer
from tests.tasks.conftest import wait_for
from tests.tasks.test_workers import REDIS_URL as CELERY_TESTS_REDIS_URL
from tests.tasks.test_workers import ROOT, worker_env

pytestmark = [
    pytest.mark.docker,
    pytest.mark.realcli,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]

PROMPT = "Create the hello file, please."
SETUP_TOKEN = "sk-ant-oat01-limits-real-cli-setup-token-abcdefghijklmnop"


EXTRA_ENV = {"DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1"}


@pytest.fixture
def cli_env(agent_settings, cli_image):
    """The real CLI in its hardened container (no network); the task's gateway forwards its
    model calls to the fake API on loopback (ANTHROPIC_API_URL)."""
    with FakeAnthropicAPI() as api:
        agent_settings.AGENT_IMAGE = cli_image
        agent_settings.ANTHROPIC_API_URL = api.url
        agent_settings.AGENT_EXTRA_ENV = EXTRA_ENV
        agent_settings.AGENT_LIMIT_JITTER_SECONDS = 1
        yield api


@pytest.fixture
def setup_token_user(user):
    credential_store(owner=user, parsed=credential_input_parse(raw=SETUP_TOKEN))
    prefs = preferences_get(user=user)
    prefs.use_oauth = True
    prefs.save()
    return user


def test_a_rejected_five_hour_window_makes_the_task_wait(cli_env, setup_token_user, local_repo):
    api = cli_env
    reset = int((timezone.now() + timedelta(hours=1)).timestamp())
    api.limit_rejected(reset)
    task = task_create(owner=setup_token_user, repo_url=local_repo, prompt=PROMPT)
    task.refresh_from_db()
    assert task.status == TaskStatus.WAITING, (task.error_message, task.log)
    assert task.limit.limited_until is not None
    assert int(task.limit.limited_until.timestamp()) == reset
    assert task.limit.window == "five_hour"
    assert "Usage limit: rejected (five_hour window)" in task.log
    assert len(api.messages_requests()) == 1  # the CLI does not retry a rejected limit
    credential = OAuthCredential.objects.get(owner=setup_token_user)
    assert credential.limit_status == "rejected"
    assert SETUP_TOKEN not in task.log


@pytest.mark.parametrize(("answer", "status"), [("auth_expired", 401), ("auth_revoked", 403)])
def test_a_rejected_token_fails_the_task_marks_it_dead_and_notifies(
    cli_env, setup_token_user, local_repo, answer, status, settings
):
    api = cli_env
    getattr(api, answer)()
    setup_token_user.email = "alice@example.test"
    setup_token_user.save()
    with SMTPServer() as smtp:
        settings.MAILERS = smtp.mailers()
        task = task_create(owner=setup_token_user, repo_url=local_repo, prompt=PROMPT)
        subjects = sorted(m["Subject"] for m in smtp.messages)
    assert subjects == [
        f"[Claude Runner] Task {task.pk} failed",
        "[Claude Runner] Your Claude OAuth tokens stopped working",
    ]
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED, task.log
    assert task.limit.auth_rejected
    assert f"HTTP {status}" in task.error_message
    assert "Sign in again" in task.error_message
    credential = OAuthCredential.objects.get(owner=setup_token_user)
    assert credential.status == CredentialStatus.INVALID
    assert SETUP_TOKEN not in task.log + task.error_message


def test_allowed_warning_is_recorded_and_the_task_succeeds(cli_env, setup_token_user, local_repo):
    api = cli_env
    api.limit_warning(0.92, int((timezone.now() + timedelta(days=2)).timestamp()))
    task = task_create(owner=setup_token_user, repo_url=local_repo, prompt=PROMPT)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log)
    assert task.limit.verdict == "warning"
    credential = OAuthCredential.objects.get(owner=setup_token_user)
    assert credential.limit_status == "allowed_warning"
    assert credential.limit_window == "seven_day"


# The same broker as the other Celery tests: this process's Celery app keeps the broker it
# first connected to, so a second URL here would send later tests' jobs to the wrong database.
CELERY_REDIS_URL = CELERY_TESTS_REDIS_URL


def _start_worker(engine: str, env: dict[str, str], settings) -> subprocess.Popen:
    """A real worker of the given engine; the test process enqueues to the same engine."""
    if engine == "database":
        settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
        command = [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--no-reload"]
        command += ["--interval", "0.5"]
    else:
        try:
            redis.Redis.from_url(CELERY_REDIS_URL).flushdb()
        except redis.RedisError as exc:
            pytest.fail(f"Redis at 127.0.0.1:6379 is needed for the Celery path: {exc}")

        app.conf.update(broker_url=CELERY_REDIS_URL, result_backend=CELERY_REDIS_URL)
        settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = CELERY_REDIS_URL
        settings.TASKS = {
            "default": {
                "BACKEND": "django_tasks_celery.CeleryBackend",
                "OPTIONS": {"CELERY_APP": "config.celery.app"},
            }
        }
        env.update(CELERY_BROKER_URL=CELERY_REDIS_URL, CELERY_RESULT_BACKEND=CELERY_REDIS_URL)
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("engine", ["database", pytest.param("celery", marks=pytest.mark.slow)])
def test_a_limited_task_resumes_on_its_own_in_a_worker_after_the_reset(
    cli_env, setup_token_user, local_repo, docker_host, settings, engine
):
    """A real worker of each engine: the resume is a django.tasks run scheduled with run_after
    (Celery's eta), no sweep involved."""
    api = cli_env
    # Far enough ahead that a loaded machine still sees the limit before its reset: a reset
    # already past when the run ends is retried minutes later, longer than this test waits.
    reset = timezone.now() + timedelta(seconds=45)
    api.limit_rejected(int(reset.timestamp()))
    env = worker_env(
        docker_host,
        TASKS_ENGINE=engine,
        AGENT_IMAGE=CLI_IMAGE,
        ANTHROPIC_API_URL=api.url,
        AGENT_EXTRA_ENV=json.dumps(EXTRA_ENV),
        AGENT_LIMIT_JITTER_SECONDS="1",
    )
    worker = _start_worker(engine, env, settings)
    try:
        task = task_create(owner=setup_token_user, repo_url=local_repo, prompt=PROMPT)
        waiting = wait_for(
            lambda: CodingTask.objects.filter(pk=task.pk, status=TaskStatus.WAITING).first(),
            timeout=120,
        )
        api.answer_normally()  # the window has reset by the time the task runs again
        assert waiting.requeue_at >= reset.replace(microsecond=0)
        done = wait_for(
            lambda: CodingTask.objects.filter(
                pk=task.pk, status__in=(TaskStatus.SUCCEEDED, TaskStatus.FAILED)
            ).first(),
            timeout=180,
        )
    finally:
        worker.terminate()
        _, err = worker.communicate(timeout=30)
    assert done.status == TaskStatus.SUCCEEDED, (done.error_message, done.log, err[-3000:])
    assert done.limit.waits == 1
    assert done.started_at >= waiting.requeue_at  # it ran again only after the reset
    assert len(api.messages_requests()) >= 2
