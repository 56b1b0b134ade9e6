"""Pull requests are offered only where they can work: without a GitHub token the new-task
form's option is off and says why, with a link that leads to the fix; a finished task's card
says why instead of a button that would fail."""

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from hosting.models import GitHubConnection
from tasks.models import CodingTask, TaskPullRequest, TaskStatus


def test_no_token_no_pull_request_and_the_way_to_fix_it(
    logged_in_page, live_server, screenshot, user, settings
):
    settings.GITHUB_API_URL = "https://api.github.com"
    page = logged_in_page
    page.goto(f"{live_server.url}/tasks/")
    checkbox = page.locator("#id_open_pull_request")
    expect(checkbox).to_be_disabled()
    reason = page.locator("#pull-request-blocked")
    expect(reason).to_contain_text("No GitHub token is saved")
    screenshot("pr-offer-01-form-without-token")

    task = CodingTask.objects.create(
        owner=user,
        repo_url="https://github.com/acme/app.git",
        prompt="Add a notes file",
        status=TaskStatus.SUCCEEDED,
        finished_at=timezone.now(),
        changed_files=[{"status": "A", "path": "NOTES.md"}],
        diff="diff --git a/NOTES.md b/NOTES.md\n+notes\n",
    )
    TaskPullRequest.objects.filter(pk=task.pk).update(bundle=b"bundle", base_branch="main")
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    card = page.locator("#task-pull-request")
    expect(card).to_contain_text("No GitHub token is saved")
    expect(card.get_by_role("button", name="Create pull request")).to_have_count(0)
    screenshot("pr-offer-02-task-without-token")
    card.get_by_role("link", name="Connect GitHub").click()
    page.wait_for_url("**/settings/code-agent/#github")
    expect(page.locator("#github")).to_contain_text("Not connected.")

    GitHubConnection.objects.create(
        owner=user,
        token="github_pat_" + "x" * 40,
        token_last4="xxxx",
        login="octo",
        expires_at=timezone.now() - timedelta(days=1),
    )
    page.goto(f"{live_server.url}/tasks/")
    expect(page.locator("#pull-request-blocked")).to_contain_text("Your GitHub token expired")
    GitHubConnection.objects.filter(owner=user).update(expires_at=None)
    page.goto(f"{live_server.url}/tasks/")
    expect(page.locator("#id_open_pull_request")).to_be_enabled()
    page.fill("#id_repo_url", "https://gitlab.com/acme/app.git")
    page.fill("#id_prompt", "Somewhere else")
    page.check("#id_open_pull_request")
    page.click("button:has-text('Run task')")
    expect(page.locator(".error-box")).to_contain_text("The repository is on gitlab.com")
    assert page.input_value("#id_prompt") == "Somewhere else"
    assert not CodingTask.objects.filter(prompt="Somewhere else").exists()
    screenshot("pr-offer-03-form-refuses-another-host")
