"""A task whose agent does whatever its prompt says (its `claude` runs the prompt as a shell
script, in an image made here from the fake-claude image) and sends back too much or nonsense:
the task still ends with its diff, bounded and redacted, and nothing it sent is believed.
Runs through task_run with the real gateway, as a user's task does."""

import io
import tarfile
import time

import docker
import pytest

from accounts.selectors import preferences_get
from tasks.models import CodingTask, TaskStatus
from tasks.run.containers import AGENT_UID
from tasks.run.finish import ERROR_MESSAGE_MAX_CHARS
from tasks.run.log import MAX_LINE_BYTES
from tasks.services import task_create
from tests.tasks.conftest import set_api_key

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

SCRIPT_CLAUDE = b"""#!/bin/sh
# Not Claude Code: the prompt (on stdin) is the program, as a prompt-injected agent would be.
prompt="$(cat)"
exec sh -c "$prompt"
"""
SAVED = "saved-variable-value-for-hostile-bounds-77"
BUNDLE_BYTES = 52 * 1024 * 1024

RESULT = (
    '{"type":"result","subtype":"success","is_error":true,"result":"%s $MY_SAVED",'
    '"total_cost_usd":-999999.5,"num_turns":1e23,"duration_ms":-5,"session_id":"s"}'
)
PROMPT = f"""
echo "changed by the agent" >> keep.txt
echo "AGENT_UID=$(id -u)"
head -c {BUNDLE_BYTES} /dev/urandom > /home/agent/out/changes.bundle
mkdir /home/agent/out/changes.bundle.lock  # git cannot write the real bundle over it
head -c {30 * 1024 * 1024} /dev/zero | tr '\\0' x; echo
big=$(head -c 1000000 /dev/zero | tr '\\0' y)
printf '{RESULT}\\n' "$big"
exit 1
"""


@pytest.fixture(scope="module")
def script_image(docker_host: str, test_image: str) -> str:
    """The fake-claude image with a `claude` that runs its prompt: a tag of this test's own."""
    client = docker.DockerClient(base_url=docker_host)
    dockerfile = (
        f"FROM {test_image}\nUSER root\nCOPY claude /usr/local/bin/claude\n"
        "RUN chmod 0755 /usr/local/bin/claude\nUSER 1000:1000\n"
    ).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("claude", SCRIPT_CLAUDE)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    tag = "claude-runner-agent:test-prompt-script-bounds"
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    return tag


def test_a_task_that_sends_back_too_much_keeps_its_diff_and_believes_nothing(
    agent_settings, script_image, user, local_repo, user_client
):
    agent_settings.AGENT_IMAGE = script_image
    # The script reads all of stdin as its prompt: it takes no stream-json messages.
    agent_settings.AGENT_MESSAGES = False
    set_api_key(user, "sk-ant-api03-key-hostile-bounds-0001")
    preferences = preferences_get(user=user)
    preferences.agent_env = {"MY_SAVED": SAVED}
    preferences.save()
    started = time.monotonic()
    task = task_create(owner=user, repo_url=local_repo, prompt=PROMPT)
    took = time.monotonic() - started
    task = CodingTask.objects.select_related("usage", "pull_request").get(pk=task.pk)

    assert task.status == TaskStatus.FAILED, (task.error_message[:500], task.log[-2000:])
    # The diff survived everything else.
    assert "+changed by the agent" in task.diff
    # Its own uid, not 1000.
    uid_lines = [line for line in task.log.splitlines() if line.startswith("AGENT_UID=")]
    assert uid_lines, task.log[-2000:]
    assert int(uid_lines[0].removeprefix("AGENT_UID=")) not in (0, AGENT_UID)
    # The error quotes the 1 MB answer cut at 8 KB, the saved value redacted.
    assert len(task.error_message) < ERROR_MESSAGE_MAX_CHARS + 200
    assert "[…cut: the message was" in task.error_message
    assert SAVED not in task.error_message
    assert SAVED not in task.result_text
    # Numbers it made up are unknown, and the log says so.
    assert (task.usage.cost_usd, task.usage.num_turns, task.usage.duration_ms) == (None,) * 3
    assert task.log.count("which cannot be right; it is recorded as unknown") == 3
    # One note for each runaway line: the 30 MB one and the 1 MB result line.
    assert task.log.count(f"a line over {MAX_LINE_BYTES} bytes was left out") == 2
    # 52 MB of random bytes as its commits: not kept, and the page says why.
    assert task.pull_request.bundle is None
    assert "54,525,952 bytes" in task.pull_request.error
    page = user_client.get(f"/tasks/{task.pk}/").content.decode()
    assert "54,525,952 bytes" in page
    assert "$-999999" not in user_client.get("/usage/").content.decode()
    assert took < 120
