"""pytest fixtures: a loopback "GitHub" (the TLS git server and the REST API fakes, one world).

    pytest_plugins = ["tests.fakes.hosting_world"]

``github`` gives a private repository acme/app that ``github.token`` may read, push to and open
pull requests in, with settings pointed at the fakes (the API's host is the git server's host,
127.0.0.1, as api.github.com is to github.com), and loopback allowed for the git server only.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fakes.git_server import FakeGitServer
from tests.fakes.github_api import FakeGitHubAPI

REPO = "acme/app"


def github_token_new(prefix: str = "github_pat_") -> str:
    return prefix + secrets.token_hex(20) + "_" + secrets.token_hex(8)


@dataclass
class GitHubWorld:
    git: FakeGitServer
    api: FakeGitHubAPI
    token: str
    repo: str = REPO

    @property
    def url(self) -> str:
        return self.git.url(self.repo)


@pytest.fixture
def git_server(tmp_path) -> Iterator[FakeGitServer]:
    with FakeGitServer(tmp_path / "git-server") as server:
        yield server


@pytest.fixture
def github_api() -> Iterator[FakeGitHubAPI]:
    with FakeGitHubAPI() as api:
        yield api


@pytest.fixture
def hosting_settings(settings, git_server, github_api):
    """git and the API pointed at the loopback fakes; loopback allowed for the git server only."""
    settings.GITHUB_API_URL = github_api.url
    settings.HOSTING_CA_BUNDLE = str(git_server.ca_file)
    settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = [git_server.host_port]
    settings.HOSTING_GIT_TIMEOUT_SECONDS = 60
    return settings


@pytest.fixture
def github(hosting_settings, git_server, github_api) -> GitHubWorld:
    token = github_token_new()
    git_server.repository_create(
        REPO, private=True, files={"README.md": "# App\n", "old.txt": "old\n", "keep.txt": "k\n"}
    )
    git_server.grant(REPO, token, push=True)
    github_api.token_add(token, login="octo", expires="2027-01-31 12:00:00 UTC")
    github_api.repository_add(REPO, private=True)
    github_api.grant(token, REPO, push=True)
    github_api.head_exists = lambda full, branch: git_server.branch_head(full, branch) is not None
    return GitHubWorld(git_server, github_api, token)
