import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from environments.models import Environment
from environments.services import EnvironmentInput, environment_save, task_environment_choose
from tasks.models import CodingTask
from tasks.services import task_create
from tests.tasks.conftest import agent_settings, gateway_socket_root, local_repo  # noqa: F401


@pytest.fixture
def env_settings(agent_settings, tmp_path):  # noqa: F811
    """Tasks with environments: the cache in this test's own folder."""
    agent_settings.AGENT_ENV_CACHE_DIR = str(tmp_path / "env-cache")
    agent_settings.AGENT_SETUP_TIMEOUT_SECONDS = 120
    agent_settings.AGENT_IMAGES_ALLOWED = []
    return agent_settings


# The image of setups decided without Docker (the decision never pulls it).
PLAN_IMAGE = "claude-runner-agent:2.1.332"


@pytest.fixture
def plan_settings(settings, tmp_path):
    """A setup decided without Docker: local repositories in this test's folder, the cache
    beside them, jobs queued and never run."""
    settings.AGENT_IMAGE = PLAN_IMAGE
    settings.AGENT_IMAGES_ALLOWED = []
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    settings.AGENT_ALLOW_LOCAL_REPOS = True
    settings.AGENT_LOCAL_REPOS_ROOT = str(tmp_path)
    settings.AGENT_ENV_CACHE_DIR = str(tmp_path / "env-cache")
    return settings


@pytest.fixture
def admin(db):
    """An admin: who may share an environment with every user."""
    return get_user_model().objects.create_user("boss", password="pw-boss-123", is_staff=True)


def make_environment(owner, *, pattern: str = "", **fields) -> Environment:
    values = {"name": "env", "image": settings.AGENT_IMAGE, **fields}
    return environment_save(owner=owner, data=EnvironmentInput(**values, repo_patterns=pattern))


def run_task(owner, repo_url: str, prompt: str, choice: str = "auto") -> CodingTask:
    """A task made as the form makes it (its environment chosen in the same transaction), run
    to its end (the test task backend runs it when the transaction commits)."""
    with transaction.atomic():
        task = task_create(owner=owner, repo_url=repo_url, prompt=prompt)
        task_environment_choose(task_id=task.pk, owner=owner, repo_url=repo_url, choice=choice)
    task.refresh_from_db()
    return task
