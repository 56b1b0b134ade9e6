"""The claim, proved with the REAL Claude Code CLI (2.1.332) through the whole product:
tokens stored here, refreshed by the server, make the CLI work in our container, and the CLI
never has to refresh them itself. Everything stays on 127.0.0.1: the Messages API is a fake
on loopback, and any other HTTP(S) goes to a recorder that forwards nothing."""

import pytest

from accounts.selectors import preferences_get
from tasks.models import TaskStatus
from tasks.services import task_create
from tests.fakes.anthropic_api import HELLO_FILE, FakeAnthropicAPI
from tests.fakes.docker_env import sandbox_env
from tests.fakes.proxy_recorder import ProxyRecorder
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
    """Tasks run the real CLI image, on the host network so it reaches the loopback fakes."""
    with FakeAnthropicAPI() as api, ProxyRecorder() as proxy:
        agent_settings.AGENT_IMAGE = cli_image
        agent_settings.AGENT_NETWORK_MODE = "host"
        agent_settings.AGENT_EXTRA_ENV = sandbox_env(api, proxy)
        yield api, proxy


def assert_task_succeeded_with_the_file(task):
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log)
    assert task.result_is_error is False and task.exit_code == 0
    assert task.result_text  # the CLI's own result object was parsed
    assert task.num_turns and task.num_turns >= 1
    assert {"status": "A", "path": HELLO_FILE} in task.changed_files
    assert f"b/{HELLO_FILE}" in task.diff
    assert "Claude Code 2.1.332 started" in task.log


def test_expired_oauth_tokens_are_refreshed_by_the_server_and_used_by_the_real_cli(
    cli_env, oauth_settings, token_server, make_credential, user, local_repo
):
    api, proxy = cli_env
    prefs = preferences_get(user=user)
    prefs.use_oauth = True
    prefs.save()
    credential = make_credential(user, expires_in=-600)  # expired in the database
    old_access = credential.access_token

    task = task_create(owner=user, repo_url=local_repo, prompt=PROMPT)

    assert_task_succeeded_with_the_file(task)
    assert token_server.request_count == 1  # the server refreshed, exactly once
    fresh = token_server.last_grant["access_token"]
    calls = api.authenticated_messages_requests()
    assert calls, api.requests
    for call in calls:
        assert call.headers["authorization"] == f"Bearer {fresh}"
        assert "oauth-2025-04-20" in call.headers.get("anthropic-beta", "")
        assert "x-api-key" not in call.headers
    assert proxy.token_endpoint_requests() == [], proxy.requests  # the CLI never refreshed
    credential.refresh_from_db()
    for secret in (fresh, old_access, credential.refresh_token):
        assert secret not in task.log and secret not in task.diff and secret not in task.result_text


def test_api_key_method_with_the_real_cli(cli_env, user, local_repo, token_server):
    api, _ = cli_env
    key = "sk-ant-api03-realcli-e2e-key-0123456789"
    set_api_key(user, key)
    task = task_create(owner=user, repo_url=local_repo, prompt=PROMPT)
    assert_task_succeeded_with_the_file(task)
    assert api.authenticated_messages_requests(), api.requests
    for call in api.authenticated_messages_requests():
        assert call.headers["x-api-key"] == key
        assert "authorization" not in call.headers
    assert token_server.request_count == 0
    assert key not in task.log


def test_setup_token_with_the_real_cli(cli_env, user, local_repo, token_server):
    from oauth_tokens.formats import credential_input_parse
    from oauth_tokens.services import credential_store

    api, proxy = cli_env
    token = "sk-ant-oat01-realcli-e2e-setup-token-abcdefghijklmnop"
    credential_store(owner=user, parsed=credential_input_parse(raw=token))
    prefs = preferences_get(user=user)
    prefs.use_oauth = True
    prefs.save()
    task = task_create(owner=user, repo_url=local_repo, prompt=PROMPT)
    assert_task_succeeded_with_the_file(task)
    assert api.authenticated_messages_requests(), api.requests
    for call in api.authenticated_messages_requests():
        assert call.headers["authorization"] == f"Bearer {token}"
        assert "oauth-2025-04-20" in call.headers.get("anthropic-beta", "")
    assert proxy.token_endpoint_requests() == []
    assert token_server.request_count == 0
    assert token not in task.log
