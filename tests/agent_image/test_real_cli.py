"""The REAL Claude Code CLI (claude-runner-agent:2.1.332) against the fake Anthropic API.

Everything stays on 127.0.0.1: the container runs with network_mode="host", the
Messages API is tests/fakes/anthropic_api.py, and every other HTTP(S) request goes to
tests/fakes/proxy_recorder.py, which records it and forwards nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest

from tests.agent_image.helpers import AgentRun, make_bare_repo, run_agent
from tests.fakes.anthropic_api import HELLO_FILE, FakeAnthropicAPI
from tests.fakes.docker_env import CLI_VERSION, sandbox_env
from tests.fakes.proxy_recorder import ProxyRecorder

pytestmark = [pytest.mark.docker, pytest.mark.realcli, pytest.mark.timeout(600)]

OAUTH_TOKEN = "sk-ant-oat01-realcli-test-access-token-0123456789"
SETUP_TOKEN = "sk-ant-oat01-realcli-setup-token-abcdefghijklmnop"
API_KEY = "sk-ant-api03-realcli-test-api-key-0123456789"
PROMPT = "Create the hello file please. PROMPT-MARKER-7f3a"
FAR_FUTURE_MS = int(time.time() * 1000) + 365 * 24 * 3600 * 1000


def _run(
    client: docker.DockerClient,
    image: str,
    tmp_path: Path,
    api: FakeAnthropicAPI,
    proxy: ProxyRecorder,
    **kwargs: object,
) -> AgentRun:
    repo = make_bare_repo(tmp_path, {"README.md": "# demo\n"})
    run = run_agent(
        client,
        image,
        prompt=PROMPT,
        repo=repo,
        env=sandbox_env(api, proxy),
        timeout=240,
        **kwargs,  # type: ignore[arg-type]
    )
    print(f"container run: {run.seconds:.2f} s, exit {run.exit_code}")
    print("fake API saw:", [(r.method, r.path, r.query, r.status) for r in api.requests])
    print("proxy saw:", [(r.method, r.target) for r in proxy.requests])
    return run


def _assert_success(run: AgentRun) -> None:
    assert run.exit_code == 0, run.describe()
    assert run.result is not None, run.describe()
    assert run.result["is_error"] is False, run.describe()
    assert run.text("exit_code").strip() == "0"
    assert f"b/{HELLO_FILE}" in run.text("diff.patch"), run.describe()
    assert f"A\t{HELLO_FILE}" in run.text("changed_files.txt").splitlines()
    init = run.stream[0]
    assert init["type"] == "system"
    assert init["subtype"] == "init"
    assert init["claude_code_version"] == CLI_VERSION


def _assert_prompt_came_through(api: FakeAnthropicAPI) -> None:
    first = api.authenticated_messages_requests()[0]
    assert PROMPT in json.dumps(first.body["messages"]), "prompt (stdin) not in the request"


def _assert_no_token_endpoint(proxy: ProxyRecorder) -> None:
    assert proxy.token_endpoint_requests() == [], proxy.requests


def test_real_cli_version(docker_client: docker.DockerClient, cli_image: str) -> None:
    out = docker_client.containers.run(
        cli_image, entrypoint=["claude", "--version"], network_mode="none", remove=True
    )
    assert out.decode().strip() == f"{CLI_VERSION} (Claude Code)"


def test_a_oauth_credentials_file(
    docker_client: docker.DockerClient, cli_image: str, tmp_path: Path, proxy: ProxyRecorder
) -> None:
    creds = {
        "claudeAiOauth": {
            "accessToken": OAUTH_TOKEN,
            "refreshToken": "",
            "expiresAt": FAR_FUTURE_MS,
            "scopes": ["user:inference", "user:profile"],
        }
    }
    with FakeAnthropicAPI(valid_credentials={OAUTH_TOKEN}) as api:
        run = _run(docker_client, cli_image, tmp_path, api, proxy, credentials=creds)
    _assert_success(run)
    assert run.stream[0]["apiKeySource"] == "none"  # no API key: the OAuth credentials file
    msgs = api.messages_requests()
    assert len(msgs) >= 2  # tool_use turn + final turn
    for r in msgs:
        assert r.headers.get("authorization") == f"Bearer {OAUTH_TOKEN}"
        assert "oauth-2025-04-20" in r.headers.get("anthropic-beta", "")
        assert "x-api-key" not in r.headers
    _assert_prompt_came_through(api)
    _assert_no_token_endpoint(proxy)
    assert OAUTH_TOKEN not in run.inspect_json
    # The credentials file stays in place (a runner may read it back).
    assert run.credentials_after is not None
    after = json.loads(run.credentials_after)
    assert after["claudeAiOauth"]["accessToken"] == OAUTH_TOKEN


def test_b_api_key_via_secret_env(
    docker_client: docker.DockerClient, cli_image: str, tmp_path: Path, proxy: ProxyRecorder
) -> None:
    with FakeAnthropicAPI(valid_credentials={API_KEY}) as api:
        run = _run(
            docker_client,
            cli_image,
            tmp_path,
            api,
            proxy,
            secret_env={"ANTHROPIC_API_KEY": API_KEY},
        )
    _assert_success(run)
    assert run.stream[0]["apiKeySource"] == "ANTHROPIC_API_KEY"
    for r in api.messages_requests():
        assert r.headers.get("x-api-key") == API_KEY
        assert "authorization" not in r.headers
    _assert_prompt_came_through(api)
    _assert_no_token_endpoint(proxy)
    assert API_KEY not in run.inspect_json
    assert API_KEY not in run.stdout + run.stderr


def test_c_setup_token_minimal_credentials(
    docker_client: docker.DockerClient, cli_image: str, tmp_path: Path, proxy: ProxyRecorder
) -> None:
    creds = {
        "claudeAiOauth": {
            "accessToken": SETUP_TOKEN,
            "refreshToken": None,
            "expiresAt": None,
            "scopes": ["user:inference"],
        }
    }
    with FakeAnthropicAPI(valid_credentials={SETUP_TOKEN}) as api:
        run = _run(docker_client, cli_image, tmp_path, api, proxy, credentials=creds)
    _assert_success(run)
    for r in api.messages_requests():
        assert r.headers.get("authorization") == f"Bearer {SETUP_TOKEN}"
        assert "oauth-2025-04-20" in r.headers.get("anthropic-beta", "")
    _assert_no_token_endpoint(proxy)
    assert SETUP_TOKEN not in run.inspect_json


def test_c2_setup_token_via_secret_env(
    docker_client: docker.DockerClient, cli_image: str, tmp_path: Path, proxy: ProxyRecorder
) -> None:
    """CLAUDE_CODE_OAUTH_TOKEN (what `claude setup-token` prints) as a secret env var."""
    with FakeAnthropicAPI(valid_credentials={SETUP_TOKEN}) as api:
        run = _run(
            docker_client,
            cli_image,
            tmp_path,
            api,
            proxy,
            secret_env={"CLAUDE_CODE_OAUTH_TOKEN": SETUP_TOKEN},
        )
    _assert_success(run)
    for r in api.messages_requests():
        assert r.headers.get("authorization") == f"Bearer {SETUP_TOKEN}"
        assert "oauth-2025-04-20" in r.headers.get("anthropic-beta", "")
    _assert_no_token_endpoint(proxy)
    assert SETUP_TOKEN not in run.inspect_json


def test_d_flat_credentials_format_is_not_accepted(
    docker_client: docker.DockerClient, cli_image: str, tmp_path: Path, proxy: ProxyRecorder
) -> None:
    flat = {
        "access_token": OAUTH_TOKEN,
        "refresh_token": "sk-ant-ort01-flat-refresh",
        "expires_at": FAR_FUTURE_MS,
        "token_type": "Bearer",
    }
    with FakeAnthropicAPI(valid_credentials={OAUTH_TOKEN}) as api:
        run = _run(docker_client, cli_image, tmp_path, api, proxy, credentials=flat)
    assert run.exit_code != 0 or (run.result and run.result["is_error"]), run.describe()
    assert run.result is not None, run.describe()
    assert run.result["is_error"] is True, run.describe()
    assert "not logged in" in run.result["result"].lower(), run.result
    assert api.authenticated_messages_requests() == []
    assert not any(OAUTH_TOKEN in (r.bearer_token or "", r.api_key or "") for r in api.requests), (
        "the flat file's token was used"
    )
    _assert_no_token_endpoint(proxy)
    assert HELLO_FILE not in run.text("diff.patch")


def test_expired_oauth_token_tries_refresh_through_the_proxy(
    docker_client: docker.DockerClient, cli_image: str, tmp_path: Path, proxy: ProxyRecorder
) -> None:
    """Positive control for the 'no token endpoint' assertions above: an expired token
    with a refresh token makes the CLI call the token endpoint, which the recorder sees
    (and refuses: nothing leaves the machine)."""
    creds = {
        "claudeAiOauth": {
            "accessToken": OAUTH_TOKEN,
            "refreshToken": "sk-ant-ort01-expired-test-refresh",
            "expiresAt": int(time.time() * 1000) - 3600 * 1000,
            "scopes": ["user:inference", "user:profile"],
        }
    }
    with FakeAnthropicAPI(valid_credentials={OAUTH_TOKEN}) as api:
        run = _run(docker_client, cli_image, tmp_path, api, proxy, credentials=creds)
    assert proxy.token_endpoint_requests(), (proxy.requests, run.describe())
    assert {r.host for r in proxy.token_endpoint_requests()} <= {
        "platform.claude.com",
        "console.anthropic.com",
    }
