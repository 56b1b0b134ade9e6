"""A setup that fails ends the task before the agent runs (no model request, no agent
container), says why with its exit code and the end of its log, and leaves nothing running;
a flood of output is kept bounded; the agent's own hardening applies to setup too."""

import threading
import time

import pytest

from environments.models import EnvironmentSnapshot, TaskEnvironment
from tasks.models import CodingTask, TaskStatus, TaskUsage
from tasks.run.containers import INSTANCE_LABEL, instance_id
from tests.environments.conftest import make_environment, run_task
from tests.tasks.conftest import set_api_key

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def _left(docker_client, task) -> list:
    labels = [f"claude-runner.task-id={task.pk}", f"{INSTANCE_LABEL}={instance_id()}"]
    return docker_client.containers.list(all=True, filters={"label": labels})


def _agent_never_ran(task) -> None:
    assert "agent-entrypoint" not in task.log
    assert TaskUsage.objects.get(pk=task.pk).requests is None
    assert not task.diff


def test_a_setup_that_exits_2_fails_the_task_with_its_code_and_log_tail(
    env_settings, user, local_repo, docker_client
):
    set_api_key(user, "sk-ant-api03-environment-failure-key-0001")
    make_environment(
        user,
        pattern=local_repo,
        setup_script="echo installing things\necho 'boom: no such package' >&2\nexit 2\n",
    )
    task = run_task(user, local_repo, "never runs")
    assert task.status == TaskStatus.FAILED
    assert task.error_message.startswith("Setup failed with exit code 2; the agent did not run.")
    assert "boom: no such package" in task.error_message
    run = TaskEnvironment.objects.get(pk=task.pk)
    assert run.setup_exit_code == 2
    assert "installing things" in run.setup_log
    _agent_never_ran(task)
    assert not _left(docker_client, task)
    assert not EnvironmentSnapshot.objects.exists()  # nothing half-saved


def test_a_setup_that_hangs_is_stopped_at_its_timeout(
    env_settings, user, local_repo, docker_client
):
    env_settings.AGENT_SETUP_TIMEOUT_SECONDS = 3
    set_api_key(user, "sk-ant-api03-environment-failure-key-0002")
    make_environment(user, pattern=local_repo, setup_script="echo waiting forever\nsleep 600\n")
    task = run_task(user, local_repo, "never runs")
    assert task.status == TaskStatus.FAILED
    assert "ran longer than the limit of 3 s (AGENT_SETUP_TIMEOUT_SECONDS)" in task.error_message
    run = TaskEnvironment.objects.get(pk=task.pk)
    assert run.setup_seconds is not None
    assert run.setup_seconds < 60
    assert "waiting forever" in run.setup_log  # what it printed before it hung
    _agent_never_ran(task)
    assert not _left(docker_client, task)
    assert not EnvironmentSnapshot.objects.exists()


def test_fifty_megabytes_of_output_leave_a_bounded_log_with_a_note(
    env_settings, user, local_repo, docker_client
):
    env_settings.AGENT_SETUP_LOG_MAX_BYTES = 64 * 1024
    set_api_key(user, "sk-ant-api03-environment-failure-key-0003")
    script = "head -c 50000000 /dev/zero | tr '\\0' x | fold -w 100\necho THE-LAST-LINE\n"
    make_environment(user, pattern=local_repo, setup_script=script)
    task = run_task(user, local_repo, "after the flood")
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log[-2000:])
    run = TaskEnvironment.objects.get(pk=task.pk)
    assert run.setup_log_truncated
    assert len(run.setup_log.encode()) < 80 * 1024
    assert "the output was over 31744 bytes" in run.setup_log, run.setup_log[-3000:]
    assert "[setup] the script exited with code 0" in run.setup_log
    assert "THE-LAST-LINE" in run.setup_log
    assert not _left(docker_client, task)


def test_setup_runs_hardened_with_no_network_but_its_gateway(env_settings, user, local_repo):
    set_api_key(user, "sk-ant-api03-environment-failure-key-0004")
    script = (
        "set -e\n"
        "grep -q '^CapEff:\\s*0000000000000000' /proc/self/status && echo NO-CAPABILITIES\n"
        "grep -q '^NoNewPrivs:\\s*1' /proc/self/status && echo NO-NEW-PRIVILEGES\n"
        "touch /usr/x 2>/dev/null || echo READ-ONLY-ROOT\n"
        'test "$(id -u)" != 0 && echo NOT-ROOT\n'
        "ls /sys/class/net | tr '\\n' ' '; echo\n"
        # The proxy is the setup gateway: the package registries only (the default).
        "git ls-remote https://example.com/x.git 2>&1 | tail -1 || true\n"
    )
    make_environment(user, pattern=local_repo, setup_script=script)
    task = run_task(user, local_repo, "hardened")
    run = TaskEnvironment.objects.get(pk=task.pk)
    log = run.setup_log
    for word in ("NO-CAPABILITIES", "NO-NEW-PRIVILEGES", "READ-ONLY-ROOT", "NOT-ROOT"):
        assert word in log, log
    assert "lo \n" in log or "lo\n" in log  # no interface but loopback
    assert "egress refused: example.com:443 (not on the allow list)" in log


def test_a_cancel_during_setup_stops_it_and_the_agent_never_runs(
    env_settings, user, local_repo, docker_client
):
    set_api_key(user, "sk-ant-api03-environment-failure-key-0005")
    make_environment(user, pattern=local_repo, setup_script="echo started\nsleep 300\n")

    def cancel_when_setup_runs() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "started" in (
                TaskEnvironment.objects.filter(setup_log__contains="started")
                .values_list("setup_log", flat=True)
                .first()
                or ""
            ):
                CodingTask.objects.update(cancel_requested=True)
                return
            time.sleep(0.2)

    canceller = threading.Thread(target=cancel_when_setup_runs)
    canceller.start()
    started = time.monotonic()
    task = run_task(user, local_repo, "never runs")
    canceller.join()
    assert task.status == TaskStatus.CANCELLED
    assert "during setup" in task.error_message
    assert time.monotonic() - started < 120
    _agent_never_ran(task)
    assert not _left(docker_client, task)


def test_a_setup_that_fills_its_home_past_the_cache_size_fails(
    env_settings, user, local_repo, docker_client
):
    env_settings.AGENT_ENV_CACHE_MAX_GB = 1 / 1024  # 1 MiB
    set_api_key(user, "sk-ant-api03-environment-failure-key-0006")
    make_environment(
        user, pattern=local_repo, setup_script="head -c 5000000 /dev/zero > ~/.cache-blob\n"
    )
    task = run_task(user, local_repo, "never runs")
    assert task.status == TaskStatus.FAILED
    assert "what setup left in the home is over 0.0 GB (AGENT_ENV_CACHE_MAX_GB)" in (
        task.error_message
    )
    _agent_never_ran(task)
    assert not _left(docker_client, task)
    assert not EnvironmentSnapshot.objects.exists()
