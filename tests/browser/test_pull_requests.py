"""GitHub in a real browser: connect it on the settings page (live check), run a task on a
private repository, create the pull request, follow its link, continue the task."""

import pytest
from playwright.sync_api import expect

from tasks.models import CodingTask, PullRequestState
from tests.tasks.conftest import (  # noqa: F401 (fixtures)
    agent_settings,
    gateway_socket_root,
    set_api_key,
)

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.django_db(transaction=True)]


@pytest.mark.usefixtures("agent_settings")
def test_connect_run_create_pull_request_follow_and_continue(
    logged_in_page, live_server, screenshot, user, github
):
    set_api_key(user, "sk-ant-api03-browser-pull-request-key-0000000042")
    page = logged_in_page

    # Settings: the token is checked as it is typed, then a repository.
    page.goto(f"{live_server.url}/accounts/settings/code-agent/")
    card = page.locator("#github")
    expect(card).to_contain_text("Not connected.")
    feedback = page.locator("#github-feedback")
    page.fill("#id_token", "github_pat_" + "0" * 40)
    expect(feedback).to_contain_text("wrong, expired or revoked")
    page.fill("#id_token", github.token)
    expect(feedback).to_contain_text("octo")
    expect(feedback).to_contain_text("2027-01-31 12:00")
    page.fill("#id_repository", "acme/app")
    expect(feedback).to_contain_text("acme/app (private)")
    expect(feedback.locator(".badge-ok")).to_have_count(2)
    screenshot("pr-01-settings-live-check")
    card.get_by_role("button", name="Save GitHub token").click()
    expect(page.locator(".messages")).to_contain_text("GitHub connected as octo.")
    expect(card).to_contain_text(f"…{github.token[-4:]}")
    assert github.token not in page.content()
    screenshot("pr-02-settings-connected")

    # A task on the private repository (it runs in its container as the form is sent).
    page.goto(f"{live_server.url}/tasks/")
    page.fill("#id_repo_url", github.url)
    page.fill("#id_prompt", "Tidy the repository\nMODIFY:keep.txt DELETE:old.txt")
    page.click("button:has-text('Run task')")
    page.wait_for_url("**/tasks/*/")
    expect(page.locator("#task-live")).to_contain_text("Succeeded", timeout=60_000)
    expect(page.get_by_role("button", name="Create pull request")).to_be_visible()
    screenshot("pr-03-task-done")

    page.get_by_role("button", name="Create pull request").click()
    link = page.locator("#pull-request-link")
    expect(link).to_have_text("Pull request #1", timeout=30_000)
    screenshot("pr-04-pull-request-opened")
    task = CodingTask.objects.get(owner=user)
    assert task.pull_request.state == PullRequestState.OPENED

    link.click()
    expect(page.locator("h1")).to_contain_text("Tidy the repository #1")
    expect(page.locator("body")).to_contain_text(task.pull_request.branch)
    screenshot("pr-05-on-github")
    page.go_back()

    page.fill("#task-continue textarea", "And the README\nMODIFY:README.md")
    # The follow-up runs inside this request (tests run tasks inline): its container, then the
    # push, which a loaded machine takes well over the default 10 s for.
    page.get_by_role("button", name="Continue the task").click(timeout=90_000)
    page.wait_for_url(lambda url: f"/tasks/{task.pk}/" not in url, timeout=90_000)
    expect(page.locator("#task-chain")).to_contain_text(f"Task {task.pk}")
    expect(page.locator("#task-pull-request")).to_contain_text("Updated", timeout=30_000)
    expect(page.locator("#pull-request-link")).to_have_text("Pull request #1")
    screenshot("pr-06-continued")
    assert github.git.log(github.repo, task.pull_request.branch) == [
        "And the README",
        "Tidy the repository",
        "initial",
    ]
    assert len(github.api.pulls_created()) == 1
