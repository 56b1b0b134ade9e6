import subprocess
from pathlib import Path

import pytest

from tests.fakes.hosting_world import REPO, github_token_new

new_token = github_token_new


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
    """What the container does: a copy of the tree (its files checked out when the runner gave
    only .git), a commit, a bundle of the new commits."""
    subprocess.run(["cp", "-a", f"{clone}/.", str(work)], check=True)
    git = ["git", "-C", str(work), "-c", "user.name=Agent", "-c", "user.email=a@example.invalid"]
    listed = subprocess.run([*git, "ls-files"], capture_output=True, text=True, check=True).stdout
    if not listed:
        subprocess.run([*git, "reset", "--quiet", "--hard"], check=True)
    for name, text in files.items():
        (work / name).write_text(text)
    base = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)
    bundle = work.parent / f"{work.name}.bundle"
    subprocess.run(
        [*git, "bundle", "create", "-q", str(bundle), f"{base.strip()}..HEAD"], check=True
    )
    return bundle
