"""The claim, proved with the REAL Claude Code CLI (2.1.332) through the whole product and the
task's gateway: the container holds a placeholder, the gateway adds the real credential (and
renews OAuth tokens while the task runs), and the fake Anthropic API sees only real ones.

The container has no network (network_mode none): its only way out is its gateway socket, and
the gateway forwards model calls to the fake API on 127.0.0.1 (ANTHROPIC_API_URL). Nothing
leaves the machine."""

import threading
import time

import pytest

from accounts.selectors import preferences_get
from oauth_tokens.formats import credential_input_parse
from oauth_tokens.services import credential_store
from tasks.models import TaskStatus
from tasks.services import task_create
from tests.fakes.anthropic_api import HELLO_FILE, FakeAnthropicAPI
from tests.tasks.conftest import set_api_key

pytestmark = [
    pytest.mark.docker,
    pytest.mark.realcli,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]

PROMPT = "Create the hello file, please."


@pytest.fixture
def cli_env(agent_settings, cli_image):
    """Tasks run the real CLI image; the gateway forwards to the fake API on loopback."""
    with FakeAnthropicAPI() as api:
        agent_settings.AGENT_IMAGE = cli_image
        agent_settings.ANTHROPIC_API_URL = api.url
        agent_settings.AGENT_EXTRA_ENV = {"DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1"}
        yield api


def enable_oauth(user) -> None:
    prefs = preferences_get(user=user)
    prefs.use_oauth = True
    prefs.save()


def assert_task_succeeded_with_the_file(task):
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log)
    assert task.result_is_error is False
    assert task.exit_code == 0
    assert task.result_text  # the CLI's own result object was parsed
    assert task.usage.num_turns
    assert task.usage.num_turns >= 1
    assert {"status": "A", "path": HELLO_FILE} in task.changed_files
    assert f"b/{HELLO_FILE}" in task.diff
    assert "Claude Code 2.1.332 started" in task.log
    # What the gateway saw is on the task: the tool call and the final answer.
    assert task.usage.requests
    assert task.usage.requests >= 2
    assert task.usage.input_tokens
    assert task.usage.output_tokens
    # The CLI never tried to refresh by itself (it would need platform.claude.com).
    assert "platform.claude.com" not in task.log


def assert_secrets_not_in_task(task, *secrets):
    for secret in secrets:
        assert secret not in task.log
        assert secret not in task.diff
        assert secret not in task.result_text
        assert secret not in task.error_message


def assert_oauth_calls(calls, tokens):
    assert calls
    for call in calls:
        assert call.bearer_token in tokens
        assert "oauth-2025-04-20" in call.headers.get("anthropic-beta", "")
        assert "x-api-key" not in call.headers


def test_oauth_expired_at_start_is_refreshed_once_and_the_api_sees_the_new_token(
    cli_env, oauth_settings, token_server, make_credential, user, local_repo, placeholders
):
    api = cli_env
    enable_oauth(user)
    credential = make_credential(user, expires_in=-600)  # expired in the database
    old_access = credential.access_token

    task = task_create(owner=user, repo_url=local_repo, prompt=PROMPT)

    assert_task_succeeded_with_the_file(task)
    assert token_server.refresh_count == 1  # refreshed exactly once, by the server
    fresh = token_server.last_grant["access_token"]
    assert_oauth_calls(api.authenticated_messages_requests(), {fresh})
    assert all(r.bearer_token != placeholders[0] for r in api.requests)  # swapped, always
    credential.refresh_from_db()
    assert_secrets_not_in_task(task, fresh, old_access, credential.refresh_token)


def test_oauth_expiring_during_the_task_is_refreshed_again_by_the_gateway(
    cli_env, oauth_settings, token_server, make_credential, user, local_repo
):
    """The token the task starts with runs out between the CLI's first and second call: the
    gateway renews it (a second refresh) and the API sees the new one; the CLI never knows."""
    api = cli_env
    buffer = oauth_settings.CLAUDE_OAUTH_REFRESH_BUFFER
    # Fresh tokens enter the refresh buffer 8 s after they are issued.
    token_server.expires_in = buffer + 8
    enable_oauth(user)
    make_credential(user, expires_in=-600)
    # The first answer is held back (its last event) until the first token is due.
    api.hold_last_event = True

    def release_when_due() -> None:
        deadline = time.monotonic() + 120
        while not token_server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        if token_server.requests:
            issued = token_server.requests[0].received_at
            time.sleep(max(0.0, issued + 9 - time.monotonic()))
        api.release_last_event.set()

    releaser = threading.Thread(target=release_when_due, daemon=True)
    releaser.start()
    task = task_create(owner=user, repo_url=local_repo, prompt=PROMPT)
    releaser.join(timeout=5)

    assert_task_succeeded_with_the_file(task)
    assert not api.held_timed_out
    assert token_server.refresh_count == 2, token_server.requests
    first, second = (g["access_token"] for g in token_server.grants.values())
    calls = api.authenticated_messages_requests()
    assert_oauth_calls(calls, {first, second})
    assert calls[0].bearer_token == first  # before it was due
    assert calls[-1].bearer_token == second  # renewed mid-run by the gateway
    assert_secrets_not_in_task(task, first, second)


def test_setup_token_with_the_real_cli(cli_env, user, local_repo, token_server):
    api = cli_env
    token = "sk-ant-oat01-realcli-e2e-setup-token-abcdefghijklmnop"
    credential_store(owner=user, parsed=credential_input_parse(raw=token))
    enable_oauth(user)
    task = task_create(owner=user, repo_url=local_repo, prompt=PROMPT)
    assert_task_succeeded_with_the_file(task)
    assert_oauth_calls(api.authenticated_messages_requests(), {token})
    assert token_server.request_count == 0
    assert_secrets_not_in_task(task, token)


def test_api_key_with_the_real_cli(cli_env, user, local_repo, token_server):
    api = cli_env
    key = "sk-ant-api03-realcli-e2e-key-0123456789"
    set_api_key(user, key)
    task = task_create(owner=user, repo_url=local_repo, prompt=PROMPT)
    assert_task_succeeded_with_the_file(task)
    calls = api.authenticated_messages_requests()
    assert calls, api.requests
    for call in calls:
        assert call.headers["x-api-key"] == key
        assert "authorization" not in call.headers
    assert token_server.request_count == 0
    assert_secrets_not_in_task(task, key)
