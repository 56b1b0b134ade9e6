"""A worker that dies during a task's setup leaves a setup container: recovery never takes it
for the task's agent (it would follow a setup as if the agent ran); the task fails as one whose
worker died before its agent existed, and the setup container goes with the next sweep."""

import contextlib

import docker
import pytest

from tasks.models import CodingTask, TaskStatus
from tasks.recovery import tasks_recover
from tasks.run.containers import PHASE_LABEL, container_labels, docker_client, engine_id

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_a_setup_container_is_not_followed_as_the_agent(env_settings, user, local_repo):
    client = docker_client()
    task = CodingTask.objects.create(
        owner=user,
        repo_url=local_repo,
        prompt="x",
        status=TaskStatus.RUNNING,
        runner="gone-host:999999",  # another host's worker: judged by its container only
        engine_id=engine_id(client=client),
    )
    setup = client.containers.create(
        env_settings.AGENT_IMAGE,
        entrypoint=["sleep", "300"],
        labels={**container_labels(task_id=task.pk), PHASE_LABEL: "setup"},
    )
    setup.start()
    try:
        report = tasks_recover()
        assert report.tasks_followed == 0
        task.refresh_from_db()
        assert task.status == TaskStatus.FAILED, task.error_message
        # Its task has ended: the next sweep removes it.
        tasks_recover()
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(str(setup.id))
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            setup.remove(force=True)
