"""Session fixtures for tests that need Docker: a Docker engine (scripts/docker-engine.sh)
and the locally built images (scripts/build-agent-images.sh). No Django needed.

Tests skip, with the reason, when the engine cannot be started or an image cannot be
built; set CLAUDE_RUNNER_REQUIRE_DOCKER=1 (e.g. in CI) to make that an error instead.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.fakes.proxy_recorder import ProxyRecorder

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_SCRIPT = REPO_ROOT / "scripts" / "docker-engine.sh"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-agent-images.sh"
# Other names (scripts/build-agent-images.sh honours the same variables): parallel checkouts
# with different agent/ files on one engine would otherwise rebuild each other's images.
TEST_IMAGE = os.environ.get("CLAUDE_RUNNER_TEST_IMAGE", "claude-runner-agent:test")
PROBE_IMAGE = os.environ.get("CLAUDE_RUNNER_PROBE_IMAGE", "claude-runner-agent:probe")
CLI_VERSION = "2.1.332"
CLI_IMAGE = os.environ.get("CLAUDE_RUNNER_CLI_IMAGE", f"claude-runner-agent:{CLI_VERSION}")
UNIVERSAL_IMAGE = os.environ.get(
    "CLAUDE_RUNNER_UNIVERSAL_IMAGE", f"claude-runner-agent:universal-{CLI_VERSION}"
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CLAUDE_RUNNER_REQUIRE_DOCKER") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _tail(text: str, n: int = 1500) -> str:
    return text[-n:].strip()


@pytest.fixture(scope="session")
def docker_host() -> str:
    """DOCKER_HOST of a running engine: the given one if it answers, else ours."""
    given = os.environ.get("DOCKER_HOST")
    if given:
        try:
            docker.from_env(environment={"DOCKER_HOST": given}).ping()
            return given
        except docker.errors.DockerException:
            pass
    if os.geteuid() != 0:
        _unavailable("Docker engine unavailable: scripts/docker-engine.sh start needs root")
    try:
        proc = subprocess.run(
            [str(ENGINE_SCRIPT), "start"], capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"Docker engine unavailable: {exc}")
    if proc.returncode != 0 or not proc.stdout.strip():
        _unavailable(f"Docker engine unavailable: docker-engine.sh start: {_tail(proc.stderr)}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    client = docker.from_env(environment={"DOCKER_HOST": docker_host}, timeout=300)
    yield client
    client.close()


def _build(docker_host: str, which: str, image: str) -> str:
    try:
        proc = subprocess.run(
            [str(BUILD_SCRIPT), which],
            capture_output=True,
            text=True,
            timeout=1200,
            env={**os.environ, "DOCKER_HOST": docker_host},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"image {image} unavailable: {exc}")
    if proc.returncode != 0:
        _unavailable(
            f"image {image} unavailable: build-agent-images.sh {which}: {_tail(proc.stderr)}"
        )
    return image


@pytest.fixture(scope="session")
def test_image(docker_host: str, docker_client: docker.DockerClient) -> str:
    """claude-runner-agent:test (fake claude)."""
    return _build(docker_host, "test", TEST_IMAGE)


@pytest.fixture(scope="session")
def probe_image(docker_host: str, docker_client: docker.DockerClient) -> str:
    """claude-runner-agent:probe (a hostile probe in place of claude: agent/test/probe.sh)."""
    return _build(docker_host, "probe", PROBE_IMAGE)


@pytest.fixture(scope="session")
def cli_image(docker_host: str, docker_client: docker.DockerClient) -> str:
    """claude-runner-agent:2.1.332 (the real Claude Code CLI)."""
    return _build(docker_host, "cli", CLI_IMAGE)


@pytest.fixture(scope="session")
def universal_image(docker_host: str, docker_client: docker.DockerClient) -> str:
    """claude-runner-agent:universal-2.1.332 (the toolchains and the real CLI). A cold build
    downloads about 500 MB of Debian packages; later ones find it cached."""
    return _build(docker_host, "universal", UNIVERSAL_IMAGE)


@pytest.fixture
def proxy() -> Iterator[ProxyRecorder]:
    with ProxyRecorder() as p:
        yield p


def sandbox_env(api: FakeAnthropicAPI, proxy: ProxyRecorder) -> dict[str, str]:
    """Container env that keeps every request on this machine: the API is the fake, any
    other HTTP(S) goes to the recording proxy, which forwards nothing."""
    no_proxy = "127.0.0.1,localhost"
    return {
        "ANTHROPIC_BASE_URL": api.url,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "HTTPS_PROXY": proxy.url,
        "HTTP_PROXY": proxy.url,
        "https_proxy": proxy.url,
        "http_proxy": proxy.url,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }
