"""Older CLIs said "limit" only in the result text: the fake `claude` prints each such wording
(LIMIT_WORDING:<n>) in a real container, and every one makes the task wait."""

import io
import tarfile
from pathlib import Path

import pytest

from tasks.models import TaskStatus
from tasks.services import task_create
from tests.tasks.conftest import set_api_key

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

FAKE_CLAUDE = Path(__file__).resolve().parents[2] / "agent" / "test" / "fake-claude.sh"
IMAGE = "claude-runner-agent:test-limits"


@pytest.fixture(scope="module")
def limits_image(test_image, docker_client) -> str:
    """The test image with this checkout's fake claude (which knows LIMIT_WORDING), built
    from claude-runner-agent:test without touching it."""
    dockerfile = (
        f"FROM {test_image}\nUSER root\nCOPY fake-claude.sh /usr/local/bin/claude\n"
        "RUN chmod 755 /usr/local/bin/claude\nUSER 1000:1000\n"
    ).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (
            ("Dockerfile", dockerfile),
            ("fake-claude.sh", FAKE_CLAUDE.read_bytes()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    docker_client.images.build(fileobj=context, custom_context=True, tag=IMAGE, rm=True)
    return IMAGE


@pytest.mark.parametrize(
    ("wording", "window", "reset_known"),
    [
        (1, "", True),
        (2, "five_hour", True),
        (3, "seven_day", False),
        (4, "five_hour", True),
        (5, "monthly", False),
    ],
)
def test_every_older_wording_makes_the_task_wait(
    agent_settings, limits_image, user, local_repo, wording, window, reset_known
):
    agent_settings.AGENT_IMAGE = limits_image
    set_api_key(user, "sk-ant-api03-limits-fake-cli-key-0123")
    task = task_create(owner=user, repo_url=local_repo, prompt=f"go LIMIT_WORDING:{wording}")
    task.refresh_from_db()
    assert task.status == TaskStatus.WAITING, (task.error_message, task.log)
    assert task.limit.window == window
    assert (task.limit.limited_until is not None) == reset_known
    assert task.requeue_at is not None  # an unknown reset time is retried after a while
