"""End to end in real containers (fake-claude image) on the loopback GitHub: a mention in an
issue runs a task that opens a pull request naming the issue and answers in the thread with it;
a mention in that pull request adds a commit to it and says so."""

import pytest

from hosting.models import GitHubConnection
from tasks.models import CodingTask, PullRequestState, TaskStatus
from tests.tasks.conftest import set_api_key

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

SECRET = "e2e-webhook-secret"
API_KEY = "sk-ant-api03-e2e-mention-key-000000000042"


def test_issue_mention_to_pull_request_and_reply_then_a_commit_from_the_pull_request(
    agent_settings, github, user, client
):
    agent_settings.GITHUB_WEBHOOK_SECRET = SECRET
    agent_settings.SITE_URL = "https://runner.example"
    set_api_key(user, API_KEY)
    GitHubConnection.objects.create(owner=user, token=github.token, login="octo")
    repository = {"full_name": github.repo, "clone_url": github.url}

    def deliver(payload: dict) -> dict:
        # The comment, and the issue it is in, are on GitHub before GitHub announces it.
        number = payload["issue"]["number"]
        if "title" in payload["issue"]:
            github.api.issue_add(github.repo, number, payload["issue"]["title"])
        written = github.api.comment_add(
            github.repo, number, payload["comment"]["body"], comment_id=payload["comment"]["id"]
        )
        payload["comment"]["user"] = written["user"]
        body, headers = github.api.webhook_delivery("issue_comment", payload, secret=SECRET)
        answer = client.post("/api/github/webhook", body, "application/json", headers=headers)
        assert answer.status_code == 200
        return answer.json()

    # The job runs inline once the webhook's transaction commits (the test task backend).
    first = deliver(
        {
            "action": "created",
            "issue": {"number": 3, "title": "keep.txt is stale"},
            "comment": {
                "id": 501,
                "body": "@claude-runner Refresh keep.txt\nMODIFY:keep.txt",
                "user": {"login": "octo"},
            },
            "repository": repository,
        }
    )
    task = CodingTask.objects.select_related("pull_request").get()
    assert first == {"outcome": f"task {task.pk}"}
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log)
    assert task.pull_request.state == PullRequestState.OPENED, task.pull_request.error
    (pull,) = github.api.pulls_created()
    assert "acme/app#3" in pull["body"]  # GitHub links the issue and the pull request
    assert len(github.api.comments) == 1, github.api.comments
    (reply,) = github.api.comments
    assert reply["issue"] == 3
    assert f"Opened pull request: {task.pull_request.url}" in reply["body"]
    assert f"https://runner.example/tasks/{task.pk}/" in reply["body"]
    assert github.token not in reply["body"]
    assert {r["content"] for r in github.api.reactions} == {"eyes"}

    deliver(
        {
            "action": "created",
            "issue": {"number": task.pull_request.number, "pull_request": {"url": "x"}},
            "comment": {
                "id": 502,
                "body": "@claude-runner and the readme\nMODIFY:README.md",
                "user": {"login": "octo"},
            },
            "repository": repository,
        }
    )
    follow_up = CodingTask.objects.select_related("pull_request").exclude(pk=task.pk).get()
    assert follow_up.parent_id == task.pk
    assert follow_up.pull_request.state == PullRequestState.PUSHED, follow_up.pull_request.error
    assert len(github.api.pulls_created()) == 1  # the same pull request, one more commit
    assert github.git.log(github.repo, task.pull_request.branch)[:1] == ["and the readme"]
    last = github.api.comments[-1]
    assert last["issue"] == task.pull_request.number
    assert f"Updated pull request: {task.pull_request.url}" in last["body"]
