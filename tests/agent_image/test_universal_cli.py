"""The REAL Claude Code CLI in the universal image searches with the system's ripgrep, in its
Bash tool and in its Grep tool (docs/claude-cli-contract.md#ripgrep), and the commands of its
Bash tool get the image's shell setup. A fake model (tests/fakes/anthropic_api.py) asks for the
tools; everything stays on 127.0.0.1 as in test_real_cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from tests.agent_image.helpers import AgentRun, make_bare_repo, run_agent
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.fakes.docker_env import sandbox_env
from tests.fakes.proxy_recorder import ProxyRecorder

pytestmark = [
    pytest.mark.docker,
    pytest.mark.realcli,
    pytest.mark.universal,
    pytest.mark.timeout(600),
]

API_KEY = "sk-ant-api03-universal-test-api-key-0123456789"
NEEDLE = "NEEDLE-91b2"
SHIM_DIR = "/home/agent/shim"
# An `rg` ahead of the system's on PATH that notes each call, then runs the system's ripgrep.
RG_SHIM = b'#!/bin/sh\necho "rg $*" >>/home/agent/out/rg-calls.log\nexec /usr/bin/rg "$@"\n'


def _run(
    client: docker.DockerClient,
    image: str,
    tmp_path: Path,
    proxy: ProxyRecorder,
    *,
    tool: tuple[str, dict[str, Any]],
    env: dict[str, str],
) -> tuple[AgentRun, str, list[str]]:
    """One run whose model asks for ``tool`` once: the run, the tool's result, the tools the
    CLI offered the model."""
    repo = make_bare_repo(
        tmp_path,
        {"README.md": "# demo\n", "src/app.py": f"def handler():\n    return '{NEEDLE}'\n"},
    )
    image_env = dict(e.split("=", 1) for e in client.images.get(image).attrs["Config"]["Env"])
    with FakeAnthropicAPI(valid_credentials={API_KEY}) as api:
        api.tool_script = [tool]
        run = run_agent(
            client,
            image,
            prompt="Where is the needle?",
            repo=repo,
            secret_env={"ANTHROPIC_API_KEY": API_KEY},
            env={**sandbox_env(api, proxy), "PATH": f"{SHIM_DIR}:{image_env['PATH']}", **env},
            files={f"{SHIM_DIR}/rg": RG_SHIM},
            timeout=240,
        )
        results = api.tool_results()
        offered = [t.get("name") for t in api.messages_requests()[0].body.get("tools") or []]
    assert run.exit_code == 0, run.describe()
    assert len(results) == 1, (results, offered, run.describe())
    return run, results[0], offered


BASH_SEARCH: tuple[str, dict[str, Any]] = (
    "Bash",
    {"command": "type rg; rg -n NEEDLE-91b2; echo JDK=[$JDK_JAVA_OPTIONS]", "description": "Find"},
)
GREP: tuple[str, dict[str, Any]] = (
    "Grep",
    {"pattern": NEEDLE, "output_mode": "content", "-n": True},
)
# How the CLI is launched decides whether it offers Grep at all; for this value it does.
WITH_GREP_TOOL = {"CLAUDE_CODE_ENTRYPOINT": "local-agent"}


def test_bash_searches_with_the_system_ripgrep_and_gets_the_shell_setup(
    docker_client: docker.DockerClient, universal_image: str, tmp_path: Path, proxy: ProxyRecorder
) -> None:
    """The runner's headless run: no Grep tool, the model searches through Bash, where `rg` is
    the system's (only without one does the CLI's shell stand its own copy in for it)."""
    run, bash, offered = _run(
        docker_client, universal_image, tmp_path, proxy, tool=BASH_SEARCH, env={}
    )
    assert "Grep" not in offered, "the CLI offers Grep again: docs/claude-cli-contract.md#ripgrep"
    assert f"rg is {SHIM_DIR}/rg" in bash  # looked up on PATH, not a function of the CLI's
    assert f"src/app.py:2:    return '{NEEDLE}'" in bash
    assert NEEDLE in run.text("rg-calls.log")
    # BASH_ENV reached the Bash tool: the JVM gets the proxy the CLI was given.
    assert f"JDK=[-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort={proxy.port}" in bash


def test_the_grep_tool_runs_the_system_ripgrep(
    docker_client: docker.DockerClient, universal_image: str, tmp_path: Path, proxy: ProxyRecorder
) -> None:
    run, grep, offered = _run(
        docker_client, universal_image, tmp_path, proxy, tool=GREP, env=WITH_GREP_TOOL
    )
    assert "Grep" in offered
    assert f"src/app.py:2:    return '{NEEDLE}'" in grep
    # The CLI looked `rg` up on PATH (the shim, then the system's) instead of its own copy.
    assert f"-n {NEEDLE} ." in run.text("rg-calls.log")


def test_without_the_images_setting_the_grep_tool_runs_the_clis_own_ripgrep(
    docker_client: docker.DockerClient, universal_image: str, tmp_path: Path, proxy: ProxyRecorder
) -> None:
    """The control: USE_BUILTIN_RIPGREP=0 is what makes the Grep tool take the system's."""
    run, grep, _ = _run(
        docker_client,
        universal_image,
        tmp_path,
        proxy,
        tool=GREP,
        env={**WITH_GREP_TOOL, "USE_BUILTIN_RIPGREP": "1"},
    )
    assert f"src/app.py:2:    return '{NEEDLE}'" in grep
    assert "rg-calls.log" not in run.out
