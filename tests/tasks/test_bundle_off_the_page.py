"""The agent's commits (a bundle of up to AGENT_BUNDLE_MAX_BYTES) stay in the database row and
off every page view: the task page and its pull-request card (polled every 2 s while the pull
request is made) ask only whether there is one."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from hosting.models import GitHubConnection
from tasks.models import CodingTask, TaskPullRequest, TaskStatus

pytestmark = pytest.mark.django_db

BUNDLE = b"# v2 git bundle\n" + b"b" * (8 * 1024 * 1024)


def _fetched_bundle(queries: list[dict[str, str]]) -> list[str]:
    """The queries that read the bundle's bytes (an EXISTS test does not)."""
    return [
        q["sql"][:200]
        for q in queries
        if '"bundle"' in q["sql"].split(" FROM ", 1)[0] and "SELECT 1 AS" not in q["sql"]
    ]


@pytest.mark.parametrize("page", ["tasks:detail", "tasks:pull_request_status"])
def test_pages_never_read_the_bundle(user, user_client, page, settings):
    # A pull request is possible: a token, and the repository on that GitHub.
    settings.GITHUB_API_URL = "https://api.github.com"
    GitHubConnection.objects.create(owner=user, token="github_pat_x", login="o")
    task = CodingTask.objects.create(
        owner=user, repo_url="https://github.com/a/b", prompt="p", status=TaskStatus.SUCCEEDED
    )
    TaskPullRequest.objects.filter(pk=task.pk).update(bundle=BUNDLE)
    with CaptureQueriesContext(connection) as captured:
        response = user_client.get(reverse(page, args=[task.pk]))
    assert response.status_code == 200
    assert _fetched_bundle(captured.captured_queries) == []
    # It still knows there is one: the button is there, not "nothing to propose".
    html = response.content.decode()
    assert "Create pull request" in html
    assert "nothing to propose" not in html


def test_without_a_bundle_the_card_says_there_is_nothing_to_propose(user, user_client):
    task = CodingTask.objects.create(
        owner=user, repo_url="https://github.com/a/b", prompt="p", status=TaskStatus.SUCCEEDED
    )
    html = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "nothing to propose" in html


def test_the_admin_page_of_the_task_never_reads_the_bundle(user, admin_client):
    task = CodingTask.objects.create(
        owner=user, repo_url="https://github.com/a/b", prompt="p", status=TaskStatus.SUCCEEDED
    )
    TaskPullRequest.objects.filter(pk=task.pk).update(bundle=BUNDLE)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse("admin:tasks_codingtask_change", args=[task.pk]))
    assert response.status_code == 200
    assert _fetched_bundle(captured.captured_queries) == []
