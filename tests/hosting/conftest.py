import secrets
import subprocess
from pathlib import Path

import pytest

from tests.fakes.git_server import FakeGitServer
from tests.fakes.github_api import FakeGitHubAPI

REPO = "acme/app"


def new_token(prefix: str = "github_pat_") -> str:
    return prefix + secrets.token_hex(20) + "_" + secrets.token_hex(8)


@pytest.fixture
def git_server(tmp_path):
    with FakeGitServer(tmp_path / "server") as server:
        yield server


@pytest.fixture
def github_api():
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
def token():
    return new_token()


@pytest.fixture
def private_repo(git_server, token) -> str:
    git_server.repository_create(
        REPO, private=True, files={"README.md": "# App\n", "src/app.py": "print('hi')\n"}
    )
    git_server.grant(REPO, token, push=True)
    return git_server.url(REPO)


def agent_commit(clone: Path, work: Path, *, message: str, files: dict[str, str]) -> Path:
    """What the container does: a copy of the tree, a commit, a bundle of the new commits."""
    subprocess.run(["cp", "-a", f"{clone}/.", str(work)], check=True)
    for name, text in files.items():
        (work / name).write_text(text)
    git = ["git", "-C", str(work), "-c", "user.name=Agent", "-c", "user.email=a@example.invalid"]
    base = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)
    bundle = work.parent / f"{work.name}.bundle"
    subprocess.run(
        [*git, "bundle", "create", "-q", str(bundle), f"{base.strip()}..HEAD"], check=True
    )
    return bundle
