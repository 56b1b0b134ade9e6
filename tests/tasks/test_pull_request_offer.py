""" "Open a pull request when done" is offered only where it can work (a repository on the
connected GitHub and a saved, unexpired token); otherwise the form says why, links to the fix,
and refuses the tick up front."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hosting.models import GitHubConnection
from tasks.models import CodingTask

pytestmark = pytest.mark.django_db

SETTINGS_LINK = '<a href="{url}#github">{words}</a>'


@pytest.fixture(autouse=True)
def github_com(settings):
    settings.GITHUB_API_URL = "https://api.github.com"


def connect(user, **extra) -> None:
    GitHubConnection.objects.create(
        owner=user, token="github_pat_" + "x" * 40, token_last4="xxxx", login="octo", **extra
    )


def submit(client, **fields):
    data = {"repo_url": "https://github.com/acme/app.git", "prompt": "Do it"} | fields
    return client.post(reverse("tasks:list"), data)


def test_without_a_token_the_option_is_off_says_why_and_links_to_the_fix(user_client, user):
    page = user_client.get(reverse("tasks:list")).content.decode()
    checkbox = page.split('name="open_pull_request"', 1)[1].split(">", 1)[0]
    assert "disabled" in checkbox
    assert 'aria-describedby="pull-request-blocked"' in checkbox
    assert "Not possible now: No GitHub token is saved." in page
    link = SETTINGS_LINK.format(url=reverse("accounts:code_agent_settings"), words="Connect GitHub")
    assert link in page


def test_a_forged_tick_without_a_token_is_a_field_error(user_client, user):
    response = submit(user_client, open_pull_request="on", prompt="Keep what I typed ✓")
    assert response.status_code == 200
    assert CodingTask.objects.count() == 0
    errors = response.context["form"].errors
    assert "No GitHub token is saved" in errors["open_pull_request"][0]
    assert "Keep what I typed ✓" in response.content.decode()


def test_an_expired_token_says_so(user_client, user):
    connect(user, expires_at=timezone.now() - timedelta(hours=3))
    page = user_client.get(reverse("tasks:list")).content.decode()
    assert "Your GitHub token expired 3" in page
    assert "Replace the token</a>" in page
    response = submit(user_client, open_pull_request="on")
    error = response.context["form"].errors["open_pull_request"][0]
    assert "expired" in error
    assert "untick it" in error  # the box is right there
    assert CodingTask.objects.count() == 0


@pytest.mark.parametrize(
    ("repo_url", "words"),
    [
        ("https://gitlab.com/acme/app.git", "The repository is on gitlab.com, not on github.com"),
        ("https://github.com.evil.example/acme/app.git", ""),
        ("https://github.com/acme/app/tree/main", "has the form https://github.com/owner/name"),
        (
            "https://\uff47ithub.com/acme/app.git",
            "",
        ),  # a look-alike host: refused one way or another
    ],
)
def test_a_repository_off_the_connected_github_is_refused_up_front(
    user_client, user, repo_url, words
):
    connect(user)
    response = submit(user_client, repo_url=repo_url, open_pull_request="on")
    assert response.status_code == 200
    assert CodingTask.objects.count() == 0
    errors = response.context["form"].errors
    message = " ".join(errors.get("open_pull_request", []) + errors.get("repo_url", []))
    assert message
    assert words in message


def test_without_the_tick_nothing_about_github_is_needed(user_client, user):
    response = submit(user_client, repo_url="https://gitlab.com/acme/app.git")
    assert response.status_code == 302
    assert not CodingTask.objects.get().open_pull_request


def test_with_a_token_and_a_github_repository_the_option_works(user_client, user):
    connect(user)
    page = user_client.get(reverse("tasks:list")).content.decode()
    checkbox = page.split('name="open_pull_request"', 1)[1].split(">", 1)[0]
    assert "disabled" not in checkbox
    assert "Not possible now" not in page
    response = submit(user_client, open_pull_request="on")
    assert response.status_code == 302
    assert CodingTask.objects.get(owner=user).open_pull_request


def test_another_users_token_does_not_count(user_client, user, other_user):
    connect(other_user)
    response = submit(user_client, open_pull_request="on")
    assert "No GitHub token is saved" in response.context["form"].errors["open_pull_request"][0]
