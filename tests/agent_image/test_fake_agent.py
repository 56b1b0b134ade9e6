"""The agent container contract (agent/README.md) with the FAKE claude
(claude-runner-agent:test, agent/test/fake-claude.sh). Fast: no real CLI."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import docker
import pytest

from tests.agent_image.helpers import AgentRun, input_tar, make_bare_repo, run_agent
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.fakes.docker_env import sandbox_env
from tests.fakes.proxy_recorder import ProxyRecorder

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

TOKEN = "sk-ant-oat01-fake-image-access-token-42"
API_KEY = "sk-ant-api03-fake-image-api-key-42"
EXTRA_SECRET = "extra-secret-value-\u00e9-with spaces"
OAUTH = {
    "claudeAiOauth": {
        "accessToken": TOKEN,
        "expiresAt": 1895914568578,
        "scopes": ["user:inference", "user:profile"],
    }
}
FILES = {"README.md": "# demo\n", "docs/old.txt": "old\n"}


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


@pytest.fixture
def run(docker_client: docker.DockerClient, test_image: str, tmp_path: Path):
    def go(prompt: str = "hello", files: dict[str, str] | None = None, **kwargs) -> AgentRun:
        with FakeAnthropicAPI() as api, ProxyRecorder() as proxy:
            kwargs.setdefault("env", sandbox_env(api, proxy))
            kwargs.setdefault("timeout", 60)
            kwargs.setdefault("network_mode", "none")
            result = run_agent(
                docker_client,
                test_image,
                prompt=prompt,
                repo=make_bare_repo(tmp_path, files or FILES),
                **kwargs,
            )
        print(f"container run: {result.seconds:.2f} s, exit {result.exit_code}")
        return result

    return go


def _assert_no_secret_in_inspect(run: AgentRun, *secrets: str) -> None:
    dump = run.inspect_json
    for s in secrets:
        assert s not in dump
        assert _sha(s) not in dump


def test_oauth_run(run) -> None:
    r = run("Write notes. MARKER-1", credentials=OAUTH, secret_env={"EXTRA_VAR": EXTRA_SECRET})
    assert r.exit_code == 0, r.describe()
    assert r.result["is_error"] is False
    report = r.json("auth-report.json")
    assert report["method"] == "oauth"
    assert report["token_sha256"] == _sha(TOKEN)
    assert report["refresh_token_present"] is False
    assert report["expires_at"] == 1895914568578
    assert report["scopes"] == ["user:inference", "user:profile"]
    assert "EXTRA_VAR" in report["env_names"]
    assert "ANTHROPIC_API_KEY" not in report["env_names"]
    assert TOKEN not in json.dumps(report)
    assert "A\tAGENT_NOTES.md" in r.text("changed_files.txt").splitlines()
    assert "+Write notes. MARKER-1" in r.text("diff.patch")
    assert r.text("exit_code").strip() == "0"
    assert [m["type"] for m in r.stream] == ["system", "assistant", "result"]
    assert TOKEN not in r.stdout + r.stderr
    _assert_no_secret_in_inspect(r, TOKEN, EXTRA_SECRET)
    assert r.credentials_after is not None  # left in place


def test_api_key_run(run) -> None:
    r = run(
        "key run",
        secret_env={"ANTHROPIC_API_KEY": API_KEY, "EXTRA_VAR": EXTRA_SECRET, "BAD-NAME": "x"},
    )
    assert r.exit_code == 0, r.describe()
    report = r.json("auth-report.json")
    assert report["method"] == "api_key"
    assert report["token_sha256"] == _sha(API_KEY)
    assert {"ANTHROPIC_API_KEY", "EXTRA_VAR"} <= set(report["env_names"])
    assert "BAD-NAME" not in report["env_names"]
    assert "invalid variable name: BAD-NAME" in r.stderr
    assert "A\tAGENT_NOTES.md" in r.text("changed_files.txt")
    _assert_no_secret_in_inspect(r, API_KEY, EXTRA_SECRET)
    assert r.credentials_after is None


def test_secret_env_is_exact_and_removed(
    docker_client: docker.DockerClient, test_image: str, tmp_path: Path
) -> None:
    """Value kept byte for byte; the directory is gone before the agent runs."""
    value = "line1\nline2\n"
    repo = make_bare_repo(tmp_path, FILES)
    c = docker_client.containers.create(
        test_image,
        entrypoint=["/usr/local/bin/agent-entrypoint"],
        environment={"REPO_URL": "file:///home/agent/task/repo.git"},
        network_mode="none",
    )
    try:
        c.put_archive(
            "/", input_tar("x", secret_env={"ANTHROPIC_API_KEY": API_KEY, "V": value}, repo=repo)
        )
        # Replace claude by a probe for this one run: print V and list the secret dir.
        probe = (
            b"#!/bin/bash\nprintf '%s' \"$V\" | od -c | head -n 3 >&2\n"
            b"ls -la /home/agent/task/secret-env >&2 2>&1 || echo GONE >&2\n"
        )
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("usr/local/bin/claude")
            info.size, info.mode = len(probe), 0o755
            tar.addfile(info, io.BytesIO(probe))
        c.put_archive("/", buf.getvalue())
        c.start()
        assert c.wait(timeout=60)["StatusCode"] == 0
        err = c.logs(stdout=False, stderr=True).decode()
    finally:
        c.remove(force=True)
    assert "GONE" in err
    assert "l   i   n   e   1  \\n   l   i   n   e   2  \\n" in err


def test_fail_delete_modify(run) -> None:
    r = run("FAIL now DELETE:docs/old.txt MODIFY:README.md", credentials=OAUTH)
    assert r.exit_code == 1, r.describe()
    assert r.text("exit_code").strip() == "1"
    assert r.result["is_error"] is True
    changed = set(r.text("changed_files.txt").splitlines())
    assert changed == {"A\tAGENT_NOTES.md", "D\tdocs/old.txt", "M\tREADME.md"}
    assert "+modified by fake-claude" in r.text("diff.patch")


def test_print_secret_reaches_stdout(run) -> None:
    r = run("PRINT_SECRET", credentials=OAUTH)
    assert r.exit_code == 0, r.describe()
    assert TOKEN in r.stdout  # for the runner's log redaction tests
    assert TOKEN in r.text("stream.jsonl")


def test_refresh_token_in_container_is_rejected_by_fake(run) -> None:
    creds = {"claudeAiOauth": dict(OAUTH["claudeAiOauth"], refreshToken="sk-ant-ort01-x")}
    r = run("hello", credentials=creds)
    assert r.exit_code == 1
    assert r.result["is_error"] is True
    assert "refreshToken" in r.result["result"]


def test_missing_inference_scope_is_rejected_by_fake(run) -> None:
    creds = {"claudeAiOauth": dict(OAUTH["claudeAiOauth"], scopes=["user:profile"])}
    r = run("hello", credentials=creds)
    assert r.exit_code == 1
    assert "user:inference" in r.result["result"]


def test_both_api_key_and_oauth_is_refused(run) -> None:
    r = run("hello", credentials=OAUTH, secret_env={"ANTHROPIC_API_KEY": API_KEY})
    assert r.exit_code == 2, r.describe()
    assert r.result["is_error"] is True
    assert "both API key and OAuth given" in r.result["result"]
    assert "auth-report.json" not in r.out


def test_clone_failure_exits_3(run) -> None:
    r = run(
        "hello",
        credentials=OAUTH,
        repo_url="https://user:hunter2@127.0.0.1:9/nope.git",
    )
    assert r.exit_code == 3, r.describe()
    assert r.text("exit_code").strip() == "3"
    assert "git clone failed: https://***@127.0.0.1:9/nope.git" in r.stderr
    assert "hunter2" not in r.stderr + r.stdout + json.dumps(r.result)


def test_unknown_branch_exits_3(run) -> None:
    r = run("hello", credentials=OAUTH, repo_branch="no-such-branch")
    assert r.exit_code == 3, r.describe()
    assert "branch no-such-branch" in r.stderr


def test_timeout_stops_gracefully_and_keeps_outputs(run) -> None:
    """docker stop (SIGTERM) reaches the agent; outputs and exit_code are still written."""
    r = run("SLEEP:60", credentials=OAUTH, timeout=3)
    assert r.timed_out, r.describe()
    assert r.seconds < 12, "SIGTERM was not passed on: docker had to SIGKILL"
    assert r.exit_code != 0
    assert r.text("exit_code").strip() == str(r.exit_code)
    assert "diff.patch" in r.out
    assert "changed_files.txt" in r.out
    assert "got a stop signal" in r.stderr
