"""An environment that runs the repository's devcontainer.json lifecycle commands as setup (off
by default): they run after the environment's script; a file that is not JSON, or an image the
environment may not use, is a clear failure before anything runs."""

import json

import pytest

from environments.models import Environment, TaskEnvironment
from tasks.models import TaskStatus, TaskUsage
from tests.agent_image.helpers import make_bare_repo
from tests.environments.conftest import make_environment, run_task
from tests.tasks.conftest import set_api_key

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def _repo(tmp_path, devcontainer: str) -> str:
    files = {"README.md": "# x\n", ".devcontainer/devcontainer.json": devcontainer}
    return f"file://{make_bare_repo(tmp_path, files)}"


def test_the_lifecycle_commands_run_as_setup_when_asked(env_settings, user, tmp_path):
    set_api_key(user, "sk-ant-api03-devcontainer-key-0001")
    document = {
        "image": "some/other-image:1",
        "onCreateCommand": "echo ON-CREATE",
        "updateContentCommand": ["echo", "UPDATE CONTENT"],
        "postCreateCommand": {"a": "echo POST-CREATE"},
    }
    repo = _repo(tmp_path, json.dumps(document))
    make_environment(user, pattern=repo, setup_script="echo SCRIPT", devcontainer=True)
    task = run_task(user, repo, "go")
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log[-2000:])
    log = "\n" + TaskEnvironment.objects.get(pk=task.pk).setup_log
    order = [log.index(w) for w in ("\nSCRIPT", "\nON-CREATE", "\nUPDATE CONTENT", "\nPOST-CREATE")]
    assert order == sorted(order), log
    # Its image is not on the allowed list: the environment's is used, and the log says so.
    assert "names the image some/other-image:1, which is not on the allowed list" in task.log


def test_a_devcontainer_file_that_is_not_json_fails_setup_clearly(env_settings, user, tmp_path):
    set_api_key(user, "sk-ant-api03-devcontainer-key-0002")
    repo = _repo(tmp_path, '{"postCreateCommand": "npm i", // a comment\n}')
    make_environment(user, pattern=repo, setup_script="echo SCRIPT", devcontainer=True)
    task = run_task(user, repo, "go")
    assert task.status == TaskStatus.FAILED
    assert task.error_message.startswith(
        "Setup failed: .devcontainer/devcontainer.json is not JSON"
    )
    assert TaskUsage.objects.get(pk=task.pk).requests is None
    assert not TaskEnvironment.objects.get(pk=task.pk).setup_log  # nothing ran


def test_an_image_taken_off_the_allowed_list_fails_setup(env_settings, user, local_repo):
    set_api_key(user, "sk-ant-api03-devcontainer-key-0003")
    environment = make_environment(user, pattern=local_repo, setup_script="echo SCRIPT")
    Environment.objects.filter(pk=environment.pk).update(image="claude-runner-agent:gone")
    task = run_task(user, local_repo, "go")
    assert task.status == TaskStatus.FAILED
    assert "is not on this server's list of allowed images" in task.error_message
    assert "AGENT_IMAGES_ALLOWED" in task.error_message


def test_an_environment_is_off_for_the_devcontainer_by_default(env_settings, user, tmp_path):
    set_api_key(user, "sk-ant-api03-devcontainer-key-0004")
    repo = _repo(tmp_path, "not json at all")
    make_environment(user, pattern=repo, setup_script="echo SCRIPT")
    task = run_task(user, repo, "go")
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log[-2000:])
    assert "\nSCRIPT" in "\n" + TaskEnvironment.objects.get(pk=task.pk).setup_log
