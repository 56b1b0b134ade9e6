"""The probe image (agent/test/probe.sh: it hunts for secrets in the environment, every readable
file and /proc, and reports them hex-encoded so no redaction hides them) as the setup and as
the agent: a setup secret is there in setup and nowhere in the agent's phase; the task's real
credential is in neither."""

import pytest

from environments.models import TaskEnvironment
from tasks.models import TaskStatus
from tests.agent_image.probe import ProbeReport
from tests.environments.conftest import make_environment, run_task
from tests.tasks.conftest import set_api_key

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

USER_KEY = "sk-ant-api03-the-users-own-key-environment-probe-0001"
SETUP_SECRET = "registry-token-only-for-setup-probe-0002"


def test_a_setup_secret_is_seen_by_setup_and_not_by_the_agent(
    env_settings, probe_image, user, local_repo
):
    env_settings.AGENT_IMAGE = probe_image
    env_settings.AGENT_MESSAGES = False  # the probe reads all of stdin as its prompt
    env_settings.AGENT_SETUP_LOG_MAX_BYTES = 32 * 1024 * 1024
    env_settings.AGENT_DIFF_MAX_BYTES = 32 * 1024 * 1024
    set_api_key(user, USER_KEY)
    make_environment(
        user,
        pattern=local_repo,
        # The probe as the setup script, in /tmp so its findings file stays out of the home.
        setup_script="cd /tmp && echo probe | claude -p; rm -f /tmp/PROBE_FINDINGS.txt\n",
        setup_secrets=f"PRIVATE_REGISTRY_TOKEN={SETUP_SECRET}",
        variables="PUBLIC_SETTING=visible-to-both",
    )
    task = run_task(user, local_repo, "probe everything")
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log[-3000:])

    setup = ProbeReport.parse(TaskEnvironment.objects.get(pk=task.pk).setup_log)
    agent = ProbeReport.parse(task.diff)
    assert setup.found, "the probe ran in setup"
    assert agent.found, "the probe ran as the agent"
    # Setup sees its secret (in its environment), and the non-secret variables.
    assert setup.env().get("PRIVATE_REGISTRY_TOKEN") == SETUP_SECRET
    assert setup.env().get("PUBLIC_SETTING") == "visible-to-both"
    # The agent: not in its environment, not in /proc, not in any file it can read.
    assert not agent.contains(SETUP_SECRET), agent.where(SETUP_SECRET)
    assert "PRIVATE_REGISTRY_TOKEN" not in agent.env()
    assert agent.env().get("PUBLIC_SETTING") == "visible-to-both"
    # No real credential in either phase; plain values never reach the page.
    assert not setup.contains(USER_KEY)
    assert not agent.contains(USER_KEY)
    assert SETUP_SECRET not in task.log
    assert SETUP_SECRET not in TaskEnvironment.objects.get(pk=task.pk).setup_log
