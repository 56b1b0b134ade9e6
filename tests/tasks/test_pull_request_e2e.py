"""End to end in real containers (fake-claude image, network none) on a private repository of
the loopback GitHub: the worker clones with the token, the container commits and hands back a
bundle, the worker pushes and opens the pull request once; a follow-up pushes a second commit
onto the same branch. The token is never in the container, docker inspect, the task log, the
worker's log or the pushed commits."""

import base64
import logging
import subprocess

import pytest

from hosting.models import GitHubConnection
from tasks.follow_ups import task_continue
from tasks.models import CodingTask, PullRequestState, TaskStatus
from tasks.services import task_create
from tests.agent_image.probe import ProbeReport
from tests.tasks.conftest import InspectWatcher, set_api_key

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

API_KEY = "sk-ant-api03-e2e-pull-request-key-000000000042"


@pytest.fixture
def e2e(agent_settings, github, user, caplog):
    agent_settings.SITE_URL = "https://runner.example"
    set_api_key(user, API_KEY)
    GitHubConnection.objects.create(
        owner=user, token=github.token, token_last4=github.token[-4:], login="octo"
    )
    caplog.set_level(logging.DEBUG)
    return github


def git_text(github, *args: str) -> str:
    bare = github.git.bare_path(github.repo)
    return subprocess.run(
        ["git", "-C", str(bare), *args], capture_output=True, text=True, check=True
    ).stdout


def test_task_opens_a_pull_request_and_a_follow_up_updates_it(e2e, user, docker_client, caplog):
    github = e2e
    with InspectWatcher(docker_client) as watcher:
        task = task_create(
            owner=user,
            repo_url=github.url,
            prompt="Tidy the repository\nMODIFY:keep.txt DELETE:old.txt SLEEP:1",
            open_pull_request=True,
        )
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log)
    assert {(f["status"], f["path"]) for f in task.changed_files} == {
        ("A", "AGENT_NOTES.md"),
        ("D", "old.txt"),
        ("M", "keep.txt"),
    }
    head = f"claude-runner/{task.pk}-tidy-the-repository-modifykeeptxt-deleteoldtxt-sl"
    assert task.pull_request.state == PullRequestState.OPENED, task.pull_request.error
    assert task.pull_request.branch == head[: len(task.pull_request.branch)]
    assert task.pull_request.branch.startswith(f"claude-runner/{task.pk}-tidy-the-repository")
    (created,) = github.api.pulls_created()
    assert created["head"] == task.pull_request.branch
    assert created["base"] == "main"
    assert created["title"] == "Tidy the repository"
    assert "> Tidy the repository\n> MODIFY:keep.txt" in created["body"]
    assert task.result_text
    assert task.result_text[:40] in created["body"]
    assert f"https://runner.example/tasks/{task.pk}/" in created["body"]
    assert "Cost: $" in created["body"]
    assert task.pull_request.number == 1
    assert task.pull_request.url.endswith("/acme/app/pull/1")
    # The branch holds the agent's work as one commit on main's tip; main is untouched.
    assert github.git.log(github.repo, task.pull_request.branch) == [
        "Tidy the repository",
        "initial",
    ]
    assert "modified by fake-claude" in git_text(
        github, "show", f"{task.pull_request.branch}:keep.txt"
    )
    assert "old.txt" not in git_text(github, "ls-tree", "--name-only", task.pull_request.branch)
    assert github.git.log(github.repo, "main") == ["initial"]

    # Continue: a new task on the branch; its commit goes onto the same pull request.
    with InspectWatcher(docker_client) as watcher2:
        follow = task_continue(parent=task, prompt="Now the README\nMODIFY:README.md")
    follow.refresh_from_db()
    assert follow.status == TaskStatus.SUCCEEDED, (follow.error_message, follow.log)
    assert follow.branch == task.pull_request.branch
    assert follow.parent_id == task.pk
    assert follow.pull_request.state == PullRequestState.PUSHED, follow.pull_request.error
    assert follow.pull_request.number == 1
    assert follow.pull_request.url == task.pull_request.url
    assert github.git.log(github.repo, task.pull_request.branch) == [
        "Now the README",
        "Tidy the repository",
        "initial",
    ]
    assert len(github.api.pulls_created()) == 1  # opened exactly once
    assert sum(1 for r in github.api.requests if r.method == "POST") == 1

    # Never the token: docker inspect, the task logs, the worker's log, the pushed commits.
    token = github.token
    assert watcher.inspected
    assert watcher2.inspected
    for text in (watcher.text, watcher2.text, task.log, follow.log, caplog.text):
        assert token not in text
    assert token not in git_text(github, "log", "-p", "--all")
    # The clone needed the token: the server asked, and only the worker answered.
    assert any(r.status == 401 for r in github.git.requests)
    assert all(r.user in ("", "x-access-token") for r in github.git.requests)
    assert "using the repository the runner put in" in task.log


def test_a_task_on_a_private_repository_without_a_token_says_so(e2e, user):
    GitHubConnection.objects.filter(owner=user).delete()
    task = task_create(owner=user, repo_url=e2e.url, prompt="anything")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert "Could not clone the repository" in task.error_message
    assert "connect GitHub on the Code agent settings page" in task.error_message
    assert task.runtime.container_id == ""  # no container was started


def test_a_refusal_after_the_run_reaches_the_task(e2e, user, user_client):
    e2e.git.protect(e2e.repo, "main")  # not the task's branch: this push works
    e2e.api.rate_limit_next("GET", "/pulls", reset=2_000_000_000)
    task = task_create(
        owner=user, repo_url=e2e.url, prompt="Change\nMODIFY:keep.txt", open_pull_request=True
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.error_message
    assert task.pull_request.state == PullRequestState.FAILED
    page = user_client.get(f"/tasks/{task.pk}/").content.decode()
    assert "rate limit for your token is used up; it resets at 2033-05-18 03:33 UTC" in page
    assert "Try again" in page
    assert CodingTask.objects.count() == 1


def test_the_probe_finds_no_github_token_in_the_container(e2e, user, probe_image, settings):
    """A hostile agent (the probe image) hunts through its environment, every process's
    environment and command line, and every readable file: the clone's token is not there."""
    settings.AGENT_IMAGE = probe_image
    settings.AGENT_MESSAGES = False  # the probe reads all of stdin as its prompt
    task = task_create(owner=user, repo_url=e2e.url, prompt="look around", open_pull_request=True)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log[-3000:])
    report = ProbeReport.parse(task.log + "\n" + task.diff)
    assert report.found, task.log[-3000:]
    assert report.env(), task.log[-3000:]
    basic = base64.b64encode(f"x-access-token:{e2e.token}".encode())
    assert not report.contains(e2e.token)
    assert not report.contains(basic)
    assert not report.contains("github_pat_")
    # Its findings were committed and pushed like any change: still no token in them.
    assert task.pull_request.state == PullRequestState.OPENED, task.pull_request.error
    assert e2e.token not in git_text(e2e, "log", "-p", "--all")
