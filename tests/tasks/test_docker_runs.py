"""Tasks run end to end in real containers (fake-claude image) on the project's Docker engine."""

import threading

import pytest

from oauth_tokens.models import OAuthCredential
from tasks.models import CodingTask, TaskStatus
from tasks.runner import task_run
from tasks.services import task_cancel, task_create
from tests.tasks.conftest import InspectWatcher, auth_report, set_api_key, sha256, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


def enable_oauth(user):
    from accounts.selectors import preferences_get

    prefs = preferences_get(user=user)
    prefs.use_oauth = True
    prefs.save()


def test_oauth_task_with_expired_tokens_refreshes_then_succeeds_with_a_diff(
    agent_settings, oauth_settings, token_server, make_credential, user, local_repo, docker_client
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

    # Refreshed once, before the container started, and the new token went in.
    assert token_server.request_count == 1
    assert task.auth_method == "oauth" and task.auth_source == "user" and task.auth_refreshed
    new_access = token_server.last_grant["access_token"]
    report = auth_report(task)
    assert report["method"] == "oauth"
    assert report["token_sha256"] == sha256(new_access)
    assert report["refresh_token_present"] is False  # the chain stays on the server
    assert report["expires_at"] > 1_700_000_000_000  # milliseconds
    assert "user:inference" in report["scopes"]
    assert {"CLAUDE_USE_OAUTH", "CLAUDE_EXPIRES_AT"} <= set(report["env_names"])
    assert "ANTHROPIC_API_KEY" not in report["env_names"]  # never both

    # The diff: new, deleted and modified files.
    assert {(f["status"], f["path"]) for f in task.changed_files} == {
        ("A", "AGENT_NOTES.md"),
        ("D", "old.txt"),
        ("M", "keep.txt"),
    }
    assert "+REPORT_AUTH SLEEP:1" in task.diff and "-to be deleted" in task.diff
    assert task.exit_code == 0 and task.result_is_error is False
    assert task.num_turns == 1 and task.session_id.startswith("fake-")
    assert task.started_at and task.finished_at and task.container_id

    # Nothing secret anywhere docker shows.
    assert watcher.inspected, "the container was never seen running"
    credential.refresh_from_db()
    for secret in (new_access, credential.refresh_token, "sk-ant-"):
        assert secret not in watcher.text
        assert secret not in task.log
    assert "REPORT_AUTH" not in str([i["Config"]["Cmd"] for i in watcher.inspected])


def test_api_key_task_gets_only_the_key(
    agent_settings, user, local_repo, docker_client, token_server
):
    key = "sk-ant-api03-users-key-for-container-0042"
    set_api_key(user, key)
    with InspectWatcher(docker_client) as watcher:
        task = task_create(owner=user, repo_url=local_repo, prompt="REPORT_AUTH SLEEP:1 hi")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.error_message
    report = auth_report(task)
    assert report["method"] == "api_key" and report["token_sha256"] == sha256(key)
    assert "CLAUDE_USE_OAUTH" not in report["env_names"]
    assert task.auth_method == "api_key"
    assert watcher.inspected and key not in watcher.text
    assert token_server.request_count == 0


def test_user_agent_env_reaches_the_container_as_secret_files(
    agent_settings, user, local_repo, docker_client
):
    from accounts.selectors import preferences_get

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
    assert task.exit_code == 1 and task.result_is_error is True
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
    label = f"claude-runner.task-id={task.pk}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []


def test_cancel_a_running_task_stops_and_removes_its_container(
    agent_settings, user, local_repo, docker_client, django_db_blocker
):
    agent_settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    set_api_key(user, "sk-ant-api03-key-0048")
    task = task_create(owner=user, repo_url=local_repo, prompt="SLEEP:60")
    runner = threading.Thread(target=task_run, kwargs={"task_id": task.pk})
    runner.start()
    wait_for(lambda: CodingTask.objects.filter(pk=task.pk).exclude(container_id="").exists())
    assert task_cancel(task=task) == TaskStatus.RUNNING
    runner.join(timeout=60)
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    label = f"claude-runner.task-id={task.pk}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []


def test_cancel_a_queued_task_never_starts_it(agent_settings, user, local_repo):
    agent_settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    set_api_key(user, "sk-ant-api03-key-0049")
    task = task_create(owner=user, repo_url=local_repo, prompt="hello")
    assert task_cancel(task=task) == TaskStatus.CANCELLED
    task_run(task_id=task.pk)  # the worker picks it up later: nothing happens
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED and task.container_id == ""


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
    assert task.container_id == ""


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
    assert task.auth_method == "api_key" and task.auth_fallback
    assert "Invalid OAuth tokens in user preferences" in task.auth_note
    assert auth_report(task)["method"] == "api_key"
    assert OAuthCredential.objects.get(pk=credential.pk).status == "invalid"


def test_rotation_allowed_gives_the_refresh_token_and_saves_what_the_cli_rotated(
    agent_settings, oauth_settings, make_credential, user, local_repo, docker_client
):
    agent_settings.AGENT_ALLOW_TOKEN_ROTATION = True
    agent_settings.AGENT_PASS_TOKEN_ENV = True
    enable_oauth(user)
    credential = make_credential(user, expires_in=8 * 3600)
    given_refresh = credential.refresh_token
    with InspectWatcher(docker_client) as watcher:
        task = task_create(owner=user, repo_url=local_repo, prompt="REPORT_AUTH ROTATE SLEEP:1")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.error_message
    report = auth_report(task)
    assert report["refresh_token_present"] is True
    # CLAUDE_ACCESS_TOKEN etc. (docs/claude-cli-contract.md#environment-precedence), as secret
    # files: present by name, not in inspect.
    assert {"CLAUDE_ACCESS_TOKEN", "CLAUDE_REFRESH_TOKEN"} <= set(report["env_names"])
    assert watcher.inspected and given_refresh not in watcher.text
    credential.refresh_from_db()
    assert credential.refresh_token.startswith("sk-ant-ort01-rotated-in-container-")
    assert credential.access_token.startswith("sk-ant-oat01-rotated-in-container-")
    assert credential.refresh_count == 1
    assert credential.refresh_token not in task.log
