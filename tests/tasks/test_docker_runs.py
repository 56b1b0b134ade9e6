"""Tasks run end to end in real containers (fake-claude image) on the project's Docker engine,
each with its gateway: the container holds a placeholder, never a real token or key."""

import os
import threading

import pytest

from accounts.selectors import preferences_get
from oauth_tokens.models import OAuthCredential
from tasks.models import CodingTask, TaskStatus
from tasks.run.containers import INSTANCE_LABEL, instance_id
from tasks.run.runner import task_run
from tasks.services import task_cancel, task_create
from tests.tasks.conftest import InspectWatcher, auth_report, set_api_key, sha256, wait_for


def _task_containers(client, task: CodingTask) -> list:
    """This installation's containers of the task (other test processes number tasks alike)."""
    labels = [f"claude-runner.task-id={task.pk}", f"{INSTANCE_LABEL}={instance_id()}"]
    return client.containers.list(all=True, filters={"label": labels})


pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


def enable_oauth(user):
    prefs = preferences_get(user=user)
    prefs.use_oauth = True
    prefs.save()


def test_oauth_task_with_expired_tokens_refreshes_then_succeeds_with_a_diff(
    agent_settings,
    oauth_settings,
    token_server,
    make_credential,
    user,
    local_repo,
    docker_client,
    placeholders,
):
    enable_oauth(user)
    credential = make_credential(user, expires_in=-120)
    with InspectWatcher(docker_client) as watcher:
        task = task_create(
            owner=user,
            repo_url=local_repo,
            prompt="REPORT_AUTH SLEEP:1 DELETE:old.txt MODIFY:keep.txt tidy up",
        )
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log)

    # Refreshed once, before the container started; the container got a placeholder only.
    assert token_server.request_count == 1
    assert task.auth_method == "oauth"
    assert task.auth_source == "user"
    assert task.auth_refreshed
    new_access = token_server.last_grant["access_token"]
    report = auth_report(task)
    assert report["method"] == "oauth"
    assert report["source"] == "credentials_file"
    [placeholder] = placeholders
    assert placeholder.startswith("claude-runner-placeholder-")
    assert report["token_sha256"] == sha256(placeholder) != sha256(new_access)
    assert report["refresh_token_present"] is False  # the chain stays on the server
    # Past the task's deadline (ms), so the CLI never tries to refresh the placeholder.
    assert task.started_at is not None
    deadline_ms = (task.started_at.timestamp() + agent_settings.AGENT_TIMEOUT_SECONDS) * 1000
    assert report["expires_at"] > deadline_ms
    assert report["scopes"] == ["user:inference"]
    names = set(report["env_names"])
    # Only what the CLI reads: the credentials file (docs/claude-cli-contract.md#credentials-file).
    assert not names & {"CLAUDE_USE_OAUTH", "CLAUDE_EXPIRES_AT", "CLAUDE_ACCESS_TOKEN"}
    assert "CLAUDE_REFRESH_TOKEN" not in names
    assert "ANTHROPIC_API_KEY" not in names  # never both
    # The gateway relay was up: the CLI's base URL and every proxy variable point at it.
    assert {"ANTHROPIC_BASE_URL", "HTTPS_PROXY", "https_proxy", "NO_PROXY"} <= names
    assert os.listdir(agent_settings.AGENT_GATEWAY_SOCKET_ROOT) == []  # socket folder gone
    assert task.usage.requests == 0  # the fake claude sends nothing to the model API

    # The diff: new, deleted and modified files.
    assert {(f["status"], f["path"]) for f in task.changed_files} == {
        ("A", "AGENT_NOTES.md"),
        ("D", "old.txt"),
        ("M", "keep.txt"),
    }
    assert "+REPORT_AUTH SLEEP:1" in task.diff
    assert "-to be deleted" in task.diff
    assert task.exit_code == 0
    assert task.result_is_error is False
    assert task.usage.num_turns == 1
    assert task.session_id.startswith("fake-")
    assert task.started_at
    assert task.finished_at
    assert task.runtime.container_id

    # Nothing secret anywhere docker shows.
    assert watcher.inspected, "the container was never seen running"
    credential.refresh_from_db()
    for secret in (new_access, credential.refresh_token, placeholder, "sk-ant-"):
        assert secret not in watcher.text
        assert secret not in task.log
    assert "REPORT_AUTH" not in str([i["Config"]["Cmd"] for i in watcher.inspected])
    host = watcher.inspected[0]["HostConfig"]
    assert host["ReadonlyRootfs"]
    assert host["CapDrop"] == ["ALL"]
    assert host["NetworkMode"] == "none"


def test_api_key_task_gets_only_a_placeholder_key(
    agent_settings, user, local_repo, docker_client, token_server, placeholders
):
    key = "sk-ant-api03-users-key-for-container-0042"
    set_api_key(user, key)
    with InspectWatcher(docker_client) as watcher:
        task = task_create(owner=user, repo_url=local_repo, prompt="REPORT_AUTH SLEEP:1 hi")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.error_message
    report = auth_report(task)
    assert report["method"] == "api_key"
    assert report["token_sha256"] == sha256(placeholders[0]) != sha256(key)
    assert "CLAUDE_USE_OAUTH" not in report["env_names"]
    assert task.auth_method == "api_key"
    assert watcher.inspected
    assert key not in watcher.text
    assert token_server.request_count == 0


def test_user_agent_env_reaches_the_container_as_secret_files(
    agent_settings, user, local_repo, docker_client
):
    set_api_key(user, "sk-ant-api03-key-0043")
    prefs = preferences_get(user=user)
    prefs.agent_env = {"GITHUB_TOKEN": "ghp_should_not_show_in_inspect"}
    prefs.save()
    with InspectWatcher(docker_client) as watcher:
        task = task_create(owner=user, repo_url=local_repo, prompt="REPORT_AUTH SLEEP:1")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.error_message
    assert "GITHUB_TOKEN" in auth_report(task)["env_names"]
    assert watcher.inspected, "the container was never seen running"
    assert "ghp_should_not_show_in_inspect" not in watcher.text


def test_agent_failure_is_failed_with_the_reason(agent_settings, user, local_repo):
    set_api_key(user, "sk-ant-api03-key-0044")
    task = task_create(owner=user, repo_url=local_repo, prompt="FAIL please")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert task.exit_code == 1
    assert task.result_is_error is True
    assert "fake failure requested" in task.error_message


def test_unknown_branch_fails_with_a_clone_message(agent_settings, user, local_repo):
    set_api_key(user, "sk-ant-api03-key-0045")
    task = task_create(owner=user, repo_url=local_repo, branch="no-such-branch", prompt="x")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert task.error_message.startswith("Could not clone the repository")


def test_branch_is_used(agent_settings, user, local_repo):
    set_api_key(user, "sk-ant-api03-key-0046")
    task = task_create(owner=user, repo_url=local_repo, branch="feature", prompt="on feature")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.error_message


def test_timeout_gives_timed_out_and_leaves_no_container(
    agent_settings, user, local_repo, docker_client
):
    agent_settings.AGENT_TIMEOUT_SECONDS = 2
    set_api_key(user, "sk-ant-api03-key-0047")
    task = task_create(owner=user, repo_url=local_repo, prompt="SLEEP:60")
    task.refresh_from_db()
    assert task.status == TaskStatus.TIMED_OUT
    assert "limit" in task.error_message
    assert _task_containers(docker_client, task) == []


def test_cancel_a_running_task_stops_and_removes_its_container(
    agent_settings, user, local_repo, docker_client, django_db_blocker
):
    agent_settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    set_api_key(user, "sk-ant-api03-key-0048")
    task = task_create(owner=user, repo_url=local_repo, prompt="SLEEP:60")
    runner = threading.Thread(target=task_run, kwargs={"task_id": task.pk})
    runner.start()
    wait_for(
        lambda: CodingTask.objects.filter(pk=task.pk).exclude(runtime__container_id="").exists()
    )
    assert task_cancel(task=task) == TaskStatus.RUNNING
    runner.join(timeout=60)
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert _task_containers(docker_client, task) == []


def test_cancel_a_queued_task_never_starts_it(agent_settings, user, local_repo):
    agent_settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    set_api_key(user, "sk-ant-api03-key-0049")
    task = task_create(owner=user, repo_url=local_repo, prompt="hello")
    assert task_cancel(task=task) == TaskStatus.CANCELLED
    task_run(task_id=task.pk)  # the worker picks it up later: nothing happens
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert task.runtime.container_id == ""


def test_secret_printed_by_the_agent_is_redacted_in_the_log(agent_settings, user, local_repo):
    key = "plain-looking-key-without-prefix-0050"
    set_api_key(user, key)
    task = task_create(owner=user, repo_url=local_repo, prompt="PRINT_SECRET")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED
    assert "secret: [redacted]" in task.log
    assert key not in task.log


def test_prompt_with_shell_text_is_data_not_code(agent_settings, user, local_repo, tmp_path):
    set_api_key(user, "sk-ant-api03-key-0051")
    prompt = "$(touch /tmp/pwned) `id` ; rm -rf / && echo 'x' \" | cat"
    task = task_create(owner=user, repo_url=local_repo, prompt=prompt)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.error_message
    assert f"+{prompt}" in task.diff  # written verbatim into AGENT_NOTES.md


def test_no_auth_at_all_fails_before_any_container(agent_settings, user, local_repo):
    task = task_create(owner=user, repo_url=local_repo, prompt="hello")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert task.error_message.startswith("No way to authenticate")
    assert task.runtime.container_id == ""


def test_oauth_failure_falls_back_to_the_api_key_and_says_so(
    agent_settings, oauth_settings, token_server, make_credential, user, local_repo
):
    enable_oauth(user)
    set_api_key(user, "sk-ant-api03-fallback-key-0052")
    credential = make_credential(user, expires_in=-60)
    token_server.revoke(credential.refresh_token)
    task = task_create(owner=user, repo_url=local_repo, prompt="REPORT_AUTH")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED
    assert task.auth_method == "api_key"
    assert task.auth_fallback
    assert "Invalid OAuth tokens in user preferences" in task.auth_note
    assert auth_report(task)["method"] == "api_key"
    assert OAuthCredential.objects.get(pk=credential.pk).status == "invalid"


def test_saved_variables_that_break_the_rules_are_not_given_and_the_log_says_so(
    agent_settings, user, local_repo
):
    """Replaces the AGENT_ALLOW_TOKEN_ROTATION / AGENT_PASS_TOKEN_ENV test: those settings are
    gone. What remains to check on this path: variables saved before the rules existed."""
    set_api_key(user, "sk-ant-api03-key-0053")
    prefs = preferences_get(user=user)
    # Saved directly (the form refuses them now), as an older version could have saved them.
    prefs.agent_env = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "url.ext::sh -c id >&2.insteadOf",
        "GIT_CONFIG_VALUE_0": "file:",
        "HTTPS_PROXY": "http://evil.example:3128",
        "KEEP_ME": "fine",
    }
    prefs.save()
    task = task_create(owner=user, repo_url=local_repo, prompt="REPORT_AUTH")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.error_message
    names = set(auth_report(task)["env_names"])
    assert "KEEP_ME" in names
    assert not {"GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0"} & names
    assert "Saved environment variable GIT_CONFIG_KEY_0 left out" in task.log
    assert "Saved environment variable HTTPS_PROXY left out" in task.log


@pytest.mark.parametrize("unsafe", ["group-writable", "symlink"])
def test_a_socket_root_others_could_tamper_with_fails_the_task_before_any_container(
    agent_settings, user, local_repo, docker_client, tmp_path, unsafe
):
    # Another user who can write there could swap a task's socket folder for their own.
    root = tmp_path / "gw"
    root.mkdir()
    if unsafe == "group-writable":
        root.chmod(0o775)
    else:
        real, root = root, tmp_path / "gw-link"
        root.symlink_to(real)
    agent_settings.AGENT_GATEWAY_SOCKET_ROOT = str(root)
    set_api_key(user, "sk-ant-api03-key-0044")
    with InspectWatcher(docker_client) as watcher:
        task = task_create(owner=user, repo_url=local_repo, prompt="REPORT_AUTH hi")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert "AGENT_GATEWAY_SOCKET_ROOT" in task.error_message
    assert ("writable by group or others" if unsafe != "symlink" else "symbolic link") in (
        task.error_message
    )
    assert not watcher.inspected  # no container was started
    assert os.listdir(root) == []
