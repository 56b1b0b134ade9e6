"""The GitHub card on the Code agent settings page: live check, save, replace, remove.

The live check is bounded per user: a few checks a minute, one at a time, each with short
timeouts, so a slow GitHub (or a script testing tokens in bulk) holds no web worker for long
and costs other users nothing."""

import re
import threading
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hosting.check_quota import github_check_admit, github_check_release
from hosting.models import GitHubConnection
from tests.hosting.conftest import new_token

pytestmark = pytest.mark.django_db

SETTINGS = "/accounts/settings/code-agent/"


@pytest.fixture
def api(github_api, settings, token):
    settings.GITHUB_API_URL = github_api.url
    github_api.token_add(token, login="octo", expires="2027-01-31 12:00:00 UTC")
    github_api.repository_add("acme/app", private=True)
    github_api.grant(token, "acme/app", push=True)
    github_api.repository_add("acme/docs", private=False)
    github_api.grant(token, "acme/docs", push=False)
    return github_api


def check(client, **data):
    return client.post(reverse("hosting:github_check"), data, HTTP_HX_REQUEST="true")


def test_settings_page_shows_the_card(user_client):
    page = user_client.get(SETTINGS).content.decode()
    assert 'id="github"' in page
    assert "Not connected." in page
    assert reverse("hosting:github_check") in page
    assert reverse("hosting:github_save") in page


def test_live_check_says_whose_token_and_what_it_may_do(user_client, api, token):
    html = check(user_client, token=token).content.decode()
    assert "octo" in html
    assert "2027-01-31 12:00" in html
    assert token not in html
    html = check(user_client, token=token, repository="https://127.0.0.1/acme/app").content.decode()
    assert "acme/app" in html
    assert "(private)" in html
    assert html.count("badge-ok") == 2  # push and pull requests
    html = check(user_client, token=token, repository="acme/docs").content.decode()
    assert html.count("badge-bad") == 2
    html = check(user_client, token=token, repository="acme/nothing").content.decode()
    assert "no repository acme/nothing" in html
    html = check(user_client, token=token, repository="https://gitlab.com/a/b").content.decode()
    assert "not on 127.0.0.1" in html


def test_live_check_of_a_bad_token(user_client, api):
    html = check(user_client, token="ghp_" + "x" * 36).content.decode()
    assert "wrong, expired or revoked" in html
    html = check(user_client, token="sk-ant-api03-" + "x" * 40).content.decode()
    assert "does not look like a GitHub token" in html
    assert "sk-ant" not in html


def test_save_then_the_page_shows_it_but_never_the_token(user_client, api, token, user):
    response = user_client.post(reverse("hosting:github_save"), {"token": token}, follow=True)
    page = response.content.decode()
    assert "GitHub connected as octo." in page
    assert "Connected" in page
    assert f"…{token[-4:]}" in page
    assert token not in page
    # The saved token is used by the live check when the box is empty.
    html = check(user_client, token="", repository="acme/app").content.decode()
    assert "your saved token" in html
    assert "badge-ok" in html


def test_a_refused_token_is_not_saved_and_the_old_one_stays(user_client, api, token, user):
    user_client.post(reverse("hosting:github_save"), {"token": token})
    page = user_client.post(
        reverse("hosting:github_save"), {"token": new_token()}, follow=True
    ).content.decode()
    assert "GitHub token not saved: GitHub refused the token" in page
    assert GitHubConnection.objects.get(owner=user).token == token


def test_remove(user_client, api, token, user):
    user_client.post(reverse("hosting:github_save"), {"token": token})
    page = user_client.post(reverse("hosting:github_remove"), follow=True).content.decode()
    assert "Your GitHub token was removed." in page
    assert "Not connected." in page
    assert not GitHubConnection.objects.filter(owner=user).exists()
    page = user_client.post(reverse("hosting:github_remove"), follow=True).content.decode()
    assert "No GitHub token was saved." in page


def test_views_need_login_and_post(user_client):
    assert Client().post(reverse("hosting:github_check")).status_code == 302
    assert user_client.get(reverse("hosting:github_save")).status_code == 405


def test_the_live_check_is_never_cached(user_client, api, token):
    # It names the token's owner and what the token may do.
    response = check(user_client, token=token)
    assert "no-store" in response["Cache-Control"]


# --- the live check's limits --------------------------------------------------------------


def test_checks_beyond_the_limit_are_refused_with_the_wait_and_github_is_not_asked(
    user_client, api, token, settings, django_user_model
):
    settings.GITHUB_CHECKS_PER_MINUTE = 3
    for _ in range(3):
        assert "octo" in check(user_client, token=token).content.decode()
    asked = len(api.requests)
    html = check(user_client, token=token, repository="acme/app").content.decode()
    assert re.search(
        r"You checked GitHub 3 times in the last minute: try again in \d+ s\.", html
    ), html
    assert len(api.requests) == asked
    # Someone else's checks are their own.
    other = django_user_model.objects.create_user(username="dora", password="pw-dora-123")
    client = Client()
    client.force_login(other)
    assert "octo" in check(client, token=token).content.decode()


def test_saving_a_token_counts_as_a_check(user_client, api, token, settings, user):
    settings.GITHUB_CHECKS_PER_MINUTE = 1
    check(user_client, token=token)
    page = user_client.post(reverse("hosting:github_save"), {"token": token}, follow=True)
    assert "GitHub token not saved: You checked GitHub 1 time in the last minute" in (
        page.content.decode()
    )
    assert not GitHubConnection.objects.filter(owner=user).exists()


def test_the_limit_is_per_minute(user, settings):
    settings.GITHUB_CHECKS_PER_MINUTE = 2
    start = timezone.now()
    for _ in range(2):
        assert github_check_admit(user=user, now=start).wait_seconds == 0
        github_check_release(user=user)
    refused = github_check_admit(user=user, now=start + timedelta(seconds=20))
    assert refused.wait_seconds == 40
    assert "try again in 40 s" in refused.message
    assert github_check_admit(user=user, now=start + timedelta(seconds=60)).wait_seconds == 0


def test_one_check_at_a_time(user, settings):
    settings.GITHUB_CHECK_TIMEOUT = 5
    start = timezone.now()
    assert github_check_admit(user=user, now=start).wait_seconds == 0
    busy = github_check_admit(user=user, now=start + timedelta(seconds=1))
    assert 0 < busy.wait_seconds <= 30
    assert "Your previous check is still waiting for GitHub" in busy.message
    github_check_release(user=user)
    assert github_check_admit(user=user, now=start + timedelta(seconds=2)).wait_seconds == 0


def test_a_slow_github_is_given_up_on_after_the_check_timeout(user_client, api, token, settings):
    settings.GITHUB_CHECK_TIMEOUT = 1
    api.stall_next("/user", 4)
    html = check(user_client, token=token).content.decode()
    assert "GitHub did not answer within 1 s" in html, html
    # The next check is not held back by the one that timed out.
    assert "octo" in check(user_client, token=token).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_second_check_while_one_waits_on_github_answers_at_once(
    user, api, token, settings, django_user_model
):
    settings.GITHUB_CHECK_TIMEOUT = 5
    api.stall_next("/user", 2)
    first = Client()
    first.force_login(user)
    answers: list[str] = []
    waiting = threading.Thread(
        target=lambda: answers.append(check(first, token=token).content.decode())
    )
    waiting.start()
    deadline = time.monotonic() + 5
    while not api.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    second = Client()
    second.force_login(user)
    html = check(second, token=token).content.decode()
    assert "Your previous check is still waiting for GitHub" in html
    waiting.join()
    assert "octo" in answers[0]
    assert len(api.requests) == 1
