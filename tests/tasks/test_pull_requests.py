"""Pull requests and follow-up tasks from the task page, against the loopback GitHub (real git,
the fake REST API). The container's part is stood in for by a real commit and bundle here;
tests/tasks/test_pull_request_e2e.py runs the whole thing in containers."""

import subprocess
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from hosting.git import bundles_check_out, repository_clone
from hosting.models import GitHubConnection
from tasks.models import CodingTask, PullRequestState, TaskPullRequest, TaskStatus
from tasks.pull_requests.create import task_pull_request_create
from tasks.run.chain import chain_start
from tests.fakes.hosting_world import github_token_new
from tests.hosting.conftest import agent_commit
from tests.tasks.conftest import task_make

pytestmark = pytest.mark.django_db


def connect(user, token: str) -> None:
    GitHubConnection.objects.create(owner=user, token=token, token_last4=token[-4:], login="octo")


def finished_task(github, user, tmp_path: Path, *, prompt: str, branch: str = "", **extra):
    """A task as a container leaves it: started from a clone, its commits in a bundle."""
    work = tmp_path / f"w{time.monotonic_ns()}"
    cloned = repository_clone(url=github.url, branch=branch, token=github.token, dest=work / "c")
    bundle = agent_commit(cloned.path, work / "a", message=prompt, files={"new.txt": prompt})
    pull_request = {
        "start_commit": cloned.head,
        "base_branch": "main",
        "bundle": bundle.read_bytes(),
        **extra.pop("pull_request", {}),
    }
    return task_make(
        user,
        repo_url=github.url,
        branch=branch,
        prompt=prompt,
        status=TaskStatus.SUCCEEDED,
        result_text="I added new.txt.",
        usage={"cost_usd": Decimal("0.0420")},
        pull_request=pull_request,
        **extra,
    )


def create_pr(client, task, capture):
    """Press "Create pull request" (the job runs when the request's transaction commits), then
    load the task page."""
    with capture(execute=True):
        response = client.post(reverse("tasks:pull_request", args=[task.pk]))
    assert response.status_code == 302
    return client.get(response.url)


def test_pull_request_is_opened_once_with_head_base_title_and_body(
    github, user, user_client, tmp_path, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://runner.example"
    connect(user, github.token)
    task = finished_task(github, user, tmp_path, prompt="Add new.txt for the docs\nwith care")
    page = create_pr(user_client, task, django_capture_on_commit_callbacks).content.decode()

    task.refresh_from_db()
    head = f"claude-runner/{task.pk}-add-newtxt-for-the-docs-with-care"
    assert task.pull_request.state == PullRequestState.OPENED, task.pull_request.error
    assert task.pull_request.branch == head
    assert task.pull_request.number == 1
    (created,) = github.api.pulls_created()
    assert created["head"] == head
    assert created["base"] == "main"
    assert created["title"] == "Add new.txt for the docs"
    assert "> Add new.txt for the docs\n> with care" in created["body"]
    assert "I added new.txt." in created["body"]
    assert "$0.0420" in created["body"]
    assert f"https://runner.example/tasks/{task.pk}/" in created["body"]
    assert github.git.log("acme/app", head)[0].startswith("Add new.txt")
    assert github.git.branch_head("acme/app", "main") == task.pull_request.start_commit  # untouched
    assert task.pull_request.url in page
    assert "Pull request #1" in page

    again = create_pr(user_client, task, django_capture_on_commit_callbacks).content.decode()
    assert "The pull request exists already." in again
    assert len(github.api.pulls_created()) == 1
    # The token is on none of it.
    assert github.token not in page
    assert github.token not in created["body"]


def test_continue_pushes_to_the_same_branch_and_the_pull_request_updates(
    github, user, user_client, tmp_path, django_capture_on_commit_callbacks
):
    connect(user, github.token)
    first = finished_task(github, user, tmp_path, prompt="First change")
    create_pr(user_client, first, django_capture_on_commit_callbacks)
    first.refresh_from_db()

    response = user_client.post(
        reverse("tasks:continue", args=[first.pk]), {"prompt": "Second change"}
    )
    follow_up = CodingTask.objects.exclude(pk=first.pk).get()
    assert response.url == reverse("tasks:detail", args=[follow_up.pk])
    assert follow_up.parent == first
    assert follow_up.branch == first.pull_request.branch
    assert follow_up.open_pull_request
    assert follow_up.pull_request.base_branch == "main"

    # What its run leaves behind (on the branch), then the worker's push.
    done = finished_task(
        github, user, tmp_path, prompt="Second change", branch=first.pull_request.branch
    )
    CodingTask.objects.filter(pk=follow_up.pk).update(status=TaskStatus.SUCCEEDED)
    TaskPullRequest.objects.filter(pk=follow_up.pk).update(
        start_commit=done.pull_request.start_commit, bundle=done.pull_request.bundle
    )
    done.delete()
    task_pull_request_create(task_id=follow_up.pk)
    follow_up.refresh_from_db()
    assert follow_up.pull_request.state == PullRequestState.PUSHED, follow_up.pull_request.error
    assert follow_up.pull_request.number == first.pull_request.number
    assert follow_up.pull_request.url == first.pull_request.url
    assert github.git.log("acme/app", first.pull_request.branch) == [
        "Second change",
        "First change",
        "initial",
    ]
    assert len(github.api.pulls_created()) == 1

    page = user_client.get(reverse("tasks:detail", args=[follow_up.pk])).content.decode()
    assert "Conversation" in page
    assert f"Task {first.pk}" in page
    assert "(this one)" in page
    assert "Updated" in page
    assert first.pull_request.url in page
    parent_page = user_client.get(reverse("tasks:detail", args=[first.pk])).content.decode()
    assert f"Task {follow_up.pk}" in parent_page


def test_continue_without_a_pull_request_starts_from_the_tasks_commits(
    github, user, user_client, tmp_path
):
    connect(user, github.token)
    task = finished_task(github, user, tmp_path, prompt="x")
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "Continue the task" in page
    assert "Create pull request" in page
    response = user_client.post(reverse("tasks:continue", args=[task.pk]), {"prompt": "more"})
    follow_up = CodingTask.objects.exclude(pk=task.pk).get()
    assert response.url == reverse("tasks:detail", args=[follow_up.pk])
    assert follow_up.parent == task
    assert not follow_up.open_pull_request
    start = chain_start(task=follow_up)
    assert start is not None
    assert start.commit == task.pull_request.start_commit
    assert start.bundles == [bytes(task.pull_request.bundle)]


def test_no_changes_no_button(github, user, user_client, tmp_path):
    task = finished_task(github, user, tmp_path, prompt="x", pull_request={"bundle": None})
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "nothing to propose" in page
    assert "Create pull request</button>" not in page


def test_another_users_task_is_not_found(github, user, other_user, client, tmp_path):
    task = finished_task(github, user, tmp_path, prompt="x")
    client.force_login(other_user)
    assert client.post(reverse("tasks:pull_request", args=[task.pk])).status_code == 404
    assert (
        client.post(reverse("tasks:continue", args=[task.pk]), {"prompt": "y"}).status_code == 404
    )


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("read_only", "may not push to this repository"),
        ("revoked", "refused your token"),
        ("protected", "branch is protected"),
        ("exists", "already exists"),
        ("rate_limit", "rate limit for your token is used up; it resets at"),
        ("not_found", "no repository acme/app that your token can see"),
    ],
)
def test_each_refusal_reaches_the_task_page(
    case, words, github, user, user_client, tmp_path, django_capture_on_commit_callbacks
):
    task = finished_task(github, user, tmp_path, prompt="Refuse me")
    head = f"claude-runner/{task.pk}-refuse-me"
    connect(user, github.token)
    if case == "read_only":
        reader = github_token_new()
        github.git.grant("acme/app", reader, push=False)
        GitHubConnection.objects.filter(owner=user).update(token=reader)
    elif case == "revoked":
        GitHubConnection.objects.filter(owner=user).update(token=github_token_new())
    elif case == "protected":
        github.git.protect("acme/app", head)
    elif case == "exists":
        github.api.fail_next(
            "POST",
            "/pulls",
            422,
            {
                "message": "Validation Failed",
                "errors": [{"message": f"A pull request already exists for acme:{head}."}],
            },
        )
    elif case == "rate_limit":
        github.api.rate_limit_next("GET", "/pulls", reset=int(time.time()) + 900)
    elif case == "not_found":
        github.api.fail_next("GET", "/pulls", 404, {"message": "Not Found"})
    page = create_pr(user_client, task, django_capture_on_commit_callbacks).content.decode()
    task.refresh_from_db()
    assert task.pull_request.state == PullRequestState.FAILED
    assert words in task.pull_request.error, task.pull_request.error
    assert 'id="pull-request-error"' in page
    assert words.split(";")[0] in page
    assert "Try again" in page
    # A refusal is not sticky: once the cause is gone, "Try again" works.
    if case in ("rate_limit", "exists", "not_found"):
        page = create_pr(user_client, task, django_capture_on_commit_callbacks).content.decode()
        task.refresh_from_db()
        assert task.pull_request.state == PullRequestState.OPENED, task.pull_request.error
        assert "Pull request #1" in page


@pytest.mark.parametrize(
    ("case", "words", "fix"),
    [
        ("no_token", "No GitHub token is saved", "Connect GitHub"),
        ("expired", "Your GitHub token expired", "Replace the token"),
        ("not_github", "The repository is on gitlab.com, not on 127.0.0.1", ""),
        ("local", "Pull requests need an https URL of a repository on 127.0.0.1", ""),
    ],
)
def test_create_pull_request_is_offered_only_where_it_can_work(
    case, words, fix, github, user, user_client, tmp_path, django_capture_on_commit_callbacks
):
    task = finished_task(github, user, tmp_path, prompt="Not here")
    if case != "no_token":
        connect(user, github.token)
    if case == "expired":
        GitHubConnection.objects.filter(owner=user).update(
            expires_at=timezone.now() - timedelta(days=2)
        )
    elif case == "not_github":
        CodingTask.objects.filter(pk=task.pk).update(repo_url="https://gitlab.com/acme/app.git")
    elif case == "local":
        CodingTask.objects.filter(pk=task.pk).update(repo_url="file:///srv/git/app.git")
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "Create pull request</button>" not in page
    blocked = page.split('id="pull-request-blocked">', 1)[1].split("</p>", 1)[0]
    assert words in blocked
    if fix:
        assert f'<a href="{reverse("accounts:code_agent_settings")}#github">{fix}</a>' in blocked
    else:
        assert "<a " not in blocked  # nothing the user can change here
    # A forged POST is refused the same way, before any job.
    page = create_pr(user_client, task, django_capture_on_commit_callbacks).content.decode()
    task.refresh_from_db()
    assert task.pull_request.state == PullRequestState.NONE
    assert words in page
    assert github.api.pulls_created() == []


def test_a_token_removed_after_the_click_is_still_refused_by_the_worker(github, user, tmp_path):
    task = finished_task(github, user, tmp_path, prompt="Too late")
    TaskPullRequest.objects.filter(pk=task.pk).update(state=PullRequestState.PENDING)
    task_pull_request_create(task_id=task.pk)  # no token saved any more
    task.refresh_from_db()
    assert task.pull_request.state == PullRequestState.FAILED
    assert "No GitHub token is saved" in task.pull_request.error


def test_new_task_form_offers_the_pull_request_option(user_client, settings, tmp_path):
    page = user_client.get(reverse("tasks:list")).content.decode()
    assert "Open a pull request when done" in page


def test_pushed_commit_carries_no_token(
    github, user, user_client, tmp_path, django_capture_on_commit_callbacks
):
    connect(user, github.token)
    task = finished_task(github, user, tmp_path, prompt="Check me")
    create_pr(user_client, task, django_capture_on_commit_callbacks)
    task.refresh_from_db()
    bare = github.git.bare_path("acme/app")
    shown = subprocess.run(
        ["git", "-C", str(bare), "log", "-p", "--all", "--format=%an %ae %s %b"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Check me" in shown
    assert github.token not in shown


def test_admin_page_of_a_task_with_a_bundle(github, user, admin_client, tmp_path):
    task = finished_task(github, user, tmp_path, prompt="x")
    page = admin_client.get(reverse("admin:tasks_codingtask_change", args=[task.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert "Start commit" in content  # the task's pull-request row is shown with it
    assert "bundle" not in content.lower()  # but not its bytes


def test_a_follow_up_of_a_task_without_a_pull_request_proposes_the_whole_chain(
    github, user, user_client, tmp_path, django_capture_on_commit_callbacks
):
    connect(user, github.token)
    first = finished_task(github, user, tmp_path, prompt="First change")
    user_client.post(reverse("tasks:continue", args=[first.pk]), {"prompt": "Second change"})
    follow_up = CodingTask.objects.exclude(pk=first.pk).get()
    # What its run leaves behind: a clone at the first task's start, its commits read in, one
    # more commit on top.
    start = chain_start(task=follow_up)
    assert start is not None
    work = tmp_path / "follow-up"
    cloned = repository_clone(
        url=github.url, branch="", token=github.token, dest=work / "c", commit=start.commit
    )
    (work / "first.bundle").write_bytes(start.bundles[0])
    head = bundles_check_out(repo=cloned, bundles=[work / "first.bundle"])
    bundle = agent_commit(cloned.path, work / "a", message="Second change", files={"b.txt": "2"})
    CodingTask.objects.filter(pk=follow_up.pk).update(status=TaskStatus.SUCCEEDED)
    TaskPullRequest.objects.filter(pk=follow_up.pk).update(
        start_commit=head, base_branch="main", bundle=bundle.read_bytes()
    )
    page = create_pr(user_client, follow_up, django_capture_on_commit_callbacks).content.decode()
    follow_up.refresh_from_db()
    assert follow_up.pull_request.state == PullRequestState.OPENED, follow_up.pull_request.error
    assert github.git.log("acme/app", follow_up.pull_request.branch) == [
        "Second change",
        "First change",
        "initial",
    ]
    assert "Pull request #1" in page
