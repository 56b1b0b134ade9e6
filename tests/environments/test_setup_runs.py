"""Tasks with an environment, end to end in real containers (the fake-claude image as the
agent): the setup phase runs before the agent in its own container, its result is what the
agent starts from and is cached; the next task checks its commit out onto a copy of the
snapshot and runs the maintenance script; nothing the agent does reaches a later task."""

import pytest
from django.db import transaction

from environments.models import CacheUse, EnvironmentSnapshot, TaskEnvironment
from environments.services import (
    EnvironmentInput,
    environment_cache_reset,
    environment_save,
    task_environment_choose,
)
from tasks.models import TaskPullRequest, TaskStatus
from tasks.run.containers import INSTANCE_LABEL, instance_id
from tasks.services import task_create
from tests.environments.conftest import make_environment, run_task
from tests.tasks.conftest import set_api_key

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

SETUP = """set -e
echo "SETUP-RAN with MY_VAR=$MY_VAR"
mkdir -p ~/.cache/deps && echo installed > ~/.cache/deps/marker
echo setup-line >> keep.txt
mkdir -p build && echo built > build/out.txt
"""
MAINTENANCE = """echo MAINTENANCE-RAN
test -e ~/.cache/deps/marker && echo DEPENDENCIES-PRESENT
test -e build/out.txt && echo CHECKOUT-ARTIFACT-PRESENT
grep -q setup-line keep.txt || echo TRACKED-FILES-AT-THE-COMMIT
test -e ~/outside.txt && echo AGENT-FILE-PRESENT || echo AGENT-FILE-ABSENT
git log -1 --format=%s
"""


def _containers_left(docker_client, task) -> list:
    labels = [f"claude-runner.task-id={task.pk}", f"{INSTANCE_LABEL}={instance_id()}"]
    return docker_client.containers.list(all=True, filters={"label": labels})


def test_setup_runs_first_then_the_cache_serves_the_next_task(
    env_settings, user, local_repo, docker_client
):
    set_api_key(user, "sk-ant-api03-environment-test-key-0001")
    environment = make_environment(
        user,
        pattern=local_repo,
        setup_script=SETUP,
        maintenance_script=MAINTENANCE,
        variables="MY_VAR=hello",
    )

    # The agent (fake-claude) writes a file outside the checkout: ../outside.txt.
    first = run_task(user, local_repo, "MODIFY:../outside.txt first")
    assert first.status == TaskStatus.SUCCEEDED, (first.error_message, first.log)
    run = TaskEnvironment.objects.get(pk=first.pk)
    assert run.environment_id == environment.pk
    assert run.cache == CacheUse.MISS
    assert run.version == 1
    assert "SETUP-RAN with MY_VAR=hello" in run.setup_log
    assert run.setup_exit_code == 0
    assert run.setup_seconds is not None
    assert run.setup_seconds > 0
    # The agent started from what setup made: setup's change to a tracked file is in its diff.
    assert "+setup-line" in first.diff
    assert EnvironmentSnapshot.objects.filter(environment=environment).count() == 1
    assert not _containers_left(docker_client, first)

    second = run_task(user, local_repo, "second")
    assert second.status == TaskStatus.SUCCEEDED, (second.error_message, second.log)
    run = TaskEnvironment.objects.get(pk=second.pk)
    assert run.cache == CacheUse.HIT
    assert "MAINTENANCE-RAN" in run.setup_log
    assert "SETUP-RAN" not in run.setup_log
    assert "DEPENDENCIES-PRESENT" in run.setup_log
    # The commit is checked out onto the snapshot: files setup made stay, tracked ones are
    # the commit's.
    assert "CHECKOUT-ARTIFACT-PRESENT" in run.setup_log
    assert "TRACKED-FILES-AT-THE-COMMIT" in run.setup_log
    # The first task's agent wrote outside the checkout: not in the snapshot the next one got.
    assert "AGENT-FILE-ABSENT" in run.setup_log
    assert "checked out" in run.setup_log

    # Any edit is a new version: the next task misses the cache and runs setup afresh.
    environment_save(
        owner=user,
        environment=environment,
        data=EnvironmentInput(
            name="env",
            image=environment.image,
            setup_script=SETUP + "echo VERSION-TWO\n",
            maintenance_script=MAINTENANCE,
            variables="MY_VAR=hello",
            repo_patterns=local_repo,
        ),
    )
    third = run_task(user, local_repo, "third")
    assert third.status == TaskStatus.SUCCEEDED, (third.error_message, third.log)
    run = TaskEnvironment.objects.get(pk=third.pk)
    assert (run.cache, run.version) == (CacheUse.MISS, 2)
    assert "VERSION-TWO" in run.setup_log
    # The old version's snapshot went with the edit.
    assert list(EnvironmentSnapshot.objects.values_list("version", flat=True)) == [2]

    # "Reset cache": the next task runs setup again.
    assert environment_cache_reset(environment=environment) == 1
    fourth = run_task(user, local_repo, "fourth")
    assert TaskEnvironment.objects.get(pk=fourth.pk).cache == CacheUse.MISS


def test_a_warm_start_with_nothing_to_run_starts_no_setup_container(env_settings, user, local_repo):
    set_api_key(user, "sk-ant-api03-environment-test-key-0002")
    make_environment(user, pattern=local_repo, setup_script=SETUP)
    first = run_task(user, local_repo, "first")
    assert first.status == TaskStatus.SUCCEEDED, (first.error_message, first.log)
    second = run_task(user, local_repo, "second")
    assert second.status == TaskStatus.SUCCEEDED, (second.error_message, second.log)
    run = TaskEnvironment.objects.get(pk=second.pk)
    assert run.cache == CacheUse.HIT
    assert run.setup_seconds == 0
    assert "+setup-line" in second.diff  # the agent got the snapshot


def test_a_task_without_an_environment_runs_as_before(env_settings, user, local_repo):
    set_api_key(user, "sk-ant-api03-environment-test-key-0003")
    make_environment(user, pattern="https://github.com/somebody-else/*", setup_script=SETUP)
    task = run_task(user, local_repo, "plain")
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log)
    assert not TaskEnvironment.objects.filter(pk=task.pk).exists()
    assert "setup-line" not in task.diff


def test_a_task_on_another_branch_than_its_base_is_not_cached(env_settings, user, local_repo):
    """A task on another branch than its base: what setup ran there never becomes the start
    of a later task on the base branch."""
    set_api_key(user, "sk-ant-api03-environment-test-key-0004")
    make_environment(user, pattern=local_repo, setup_script=SETUP)
    with transaction.atomic():
        task = task_create(owner=user, repo_url=local_repo, prompt="x", branch="feature")
        TaskPullRequest.objects.filter(pk=task.pk).update(base_branch="main")
        task_environment_choose(task_id=task.pk, owner=user, repo_url=local_repo)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log)
    assert TaskEnvironment.objects.get(pk=task.pk).cache == CacheUse.MISS
    assert "Not cached: the task starts from feature, not its base branch main" in task.log
    assert not EnvironmentSnapshot.objects.exists()
