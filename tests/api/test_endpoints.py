"""The JSON API through the Django test client: the pages' rules (ownership, limits, repository
URL rules, scopes) apply alike, and every error is JSON with a stable code."""

import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from openapi_spec_validator import validate

from accounts.selectors import preferences_get
from api.models import TokenScope
from tasks.models import CodingTask, PullRequestState, TaskStatus, WaitReason
from tests.api.conftest import github_connect
from tests.tasks.conftest import set_api_key, task_make

pytestmark = pytest.mark.django_db

REPO = "https://github.com/a/b.git"


def post(client, path, body, headers):
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


def assert_error(answer, status: int, code: str, field: str | None = None):
    assert answer.status_code == status, answer.content
    body = answer.json()
    assert set(body) == {"code", "message", "field"}
    assert body["code"] == code
    assert body["message"]
    assert body["field"] == field
    return body


def test_submit_list_and_read_a_task(client, user, bearer, settings):
    github_connect(user, settings)
    made = post(
        client,
        "/api/tasks",
        {"repository": REPO, "prompt": "Fix it", "branch": "dev", "open_pull_request": True},
        bearer,
    )
    assert made.status_code == 201
    task = CodingTask.objects.get()
    assert (task.owner, task.repo_url, task.branch, task.prompt) == (user, REPO, "dev", "Fix it")
    assert task.open_pull_request is True
    body = made.json()
    assert body["id"] == task.pk
    assert body["status"] == "queued"
    assert body["chain"] == [task.pk]
    assert body["url"].endswith(f"/tasks/{task.pk}/")
    listed = client.get("/api/tasks", headers=bearer).json()
    assert listed["count"] == 1
    assert [item["id"] for item in listed["items"]] == [task.pk]
    assert "diff" not in listed["items"][0]  # the list stays small


def test_a_finished_task_shows_answer_cost_usage_files_diff_and_chain(client, user, bearer):
    parent = task_make(user, status=TaskStatus.SUCCEEDED)
    task = task_make(
        user,
        status=TaskStatus.SUCCEEDED,
        parent=parent,
        result_text="Done: fixed the bug.",
        diff="diff --git a/x b/x\n+new\n",
        changed_files=[{"status": "M", "path": "x"}],
        usage={"cost_usd": "0.123400", "input_tokens": 10, "output_tokens": 5, "num_turns": 3},
        pull_request={"state": PullRequestState.OPENED, "url": "https://github.com/a/b/pull/7"},
    )
    body = client.get(f"/api/tasks/{task.pk}", headers=bearer).json()
    assert body["answer"] == "Done: fixed the bug."
    assert body["cost_usd"] == "0.123400"
    assert body["usage"]["input_tokens"] == 10
    assert body["usage"]["num_turns"] == 3
    assert body["changed_files"] == [{"status": "M", "path": "x"}]
    assert body["diff"] == "diff --git a/x b/x\n+new\n"
    assert body["parent_id"] == parent.pk
    assert body["chain"] == [parent.pk, task.pk]
    assert body["pull_request"]["url"] == "https://github.com/a/b/pull/7"
    only_done = client.get("/api/tasks?status=succeeded&limit=1", headers=bearer).json()
    assert only_done["count"] == 2
    assert len(only_done["items"]) == 1


def test_another_users_task_is_404_everywhere(client, other_user, bearer):
    theirs = task_make(other_user, status=TaskStatus.SUCCEEDED)
    for answer in (
        client.get(f"/api/tasks/{theirs.pk}", headers=bearer),
        client.get(f"/api/tasks/{theirs.pk}?wait=30", headers=bearer),
        client.post(f"/api/tasks/{theirs.pk}/cancel", headers=bearer),
        post(client, f"/api/tasks/{theirs.pk}/continue", {"prompt": "x"}, bearer),
        client.post(f"/api/tasks/{theirs.pk}/pull-request", headers=bearer),
        client.post(f"/api/tasks/{theirs.pk}/run-again", headers=bearer),
        post(client, f"/api/tasks/{theirs.pk}/messages", {"text": "x"}, bearer),
    ):
        assert_error(answer, 404, "not_found")
    assert client.get("/api/tasks", headers=bearer).json()["count"] == 0


def test_a_read_token_reads_but_changes_nothing(client, user, make_token):
    read = {"Authorization": f"Bearer {make_token(user, scope=TokenScope.READ).secret}"}
    task = task_make(user)
    assert client.get(f"/api/tasks/{task.pk}", headers=read).status_code == 200
    assert client.get("/api/auth", headers=read).status_code == 200
    for answer in (
        post(client, "/api/tasks", {"repository": REPO, "prompt": "x"}, read),
        client.post(f"/api/tasks/{task.pk}/cancel", headers=read),
        post(client, f"/api/tasks/{task.pk}/continue", {"prompt": "x"}, read),
        client.post(f"/api/tasks/{task.pk}/pull-request", headers=read),
        client.post(f"/api/tasks/{task.pk}/run-now-with-api-key", headers=read),
        client.post(f"/api/tasks/{task.pk}/run-again", headers=read),
        post(client, f"/api/tasks/{task.pk}/messages", {"text": "x"}, read),
    ):
        assert_error(answer, 403, "insufficient_scope")
    assert CodingTask.objects.get().status == TaskStatus.QUEUED


@pytest.mark.parametrize(
    ("body", "field", "phrase"),
    [
        ({"repository": "https://127.0.0.1/x.git", "prompt": "x"}, "repository", "loopback"),
        ({"repository": "https://169.254.169.254/x.git", "prompt": "x"}, "repository", "metadata"),
        ({"repository": "ssh://git@github.com/a/b.git", "prompt": "x"}, "repository", "https://"),
        ({"repository": "file:///etc", "prompt": "x"}, "repository", "turned off"),
        ({"repository": REPO, "prompt": "   "}, "prompt", "Write what"),
        ({"repository": REPO, "prompt": "a\x00b"}, "prompt", "NUL"),
        ({"repository": REPO, "prompt": "x" * 100_001}, "prompt", "the limit is"),
        ({"repository": REPO, "prompt": "x", "branch": "a;rm"}, "branch", "does not accept"),
        ({"repository": REPO, "prompt": "x", "branch": "-x"}, "branch", "starts with"),
    ],
)
def test_the_forms_rules_refuse_bad_input_with_the_field(client, bearer, body, field, phrase):
    error = assert_error(post(client, "/api/tasks", body, bearer), 400, "invalid_input", field)
    assert phrase in error["message"]
    assert not CodingTask.objects.exists()


def test_the_per_user_task_limits_apply(client, user, bearer, settings):
    settings.AGENT_MAX_RUNNING_TASKS_PER_USER = 0
    settings.AGENT_MAX_QUEUED_TASKS_PER_USER = 1
    assert (
        post(client, "/api/tasks", {"repository": REPO, "prompt": "a"}, bearer).status_code == 201
    )
    refused = post(client, "/api/tasks", {"repository": REPO, "prompt": "b"}, bearer)
    assert "your limits are" in assert_error(refused, 409, "task_limit")["message"]
    assert CodingTask.objects.count() == 1


def test_cancel(client, user, bearer):
    queued = task_make(user)
    answer = client.post(f"/api/tasks/{queued.pk}/cancel", headers=bearer)
    assert answer.json() == {"status": "cancelled"}
    assert CodingTask.objects.get(pk=queued.pk).status == TaskStatus.CANCELLED
    done = task_make(user, status=TaskStatus.SUCCEEDED)
    assert client.post(f"/api/tasks/{done.pk}/cancel", headers=bearer).json() == {
        "status": "succeeded"
    }


def test_continue_on_the_pull_requests_branch(client, user, bearer, settings):
    github_connect(user, settings)
    running = task_make(user, status=TaskStatus.RUNNING)
    refused = post(client, f"/api/tasks/{running.pk}/continue", {"prompt": "more"}, bearer)
    assert "has not finished yet" in assert_error(refused, 409, "not_possible")["message"]
    parent = task_make(
        user,
        status=TaskStatus.SUCCEEDED,
        pull_request={"state": PullRequestState.OPENED, "branch": "claude/fix-1"},
    )
    bad = post(client, f"/api/tasks/{parent.pk}/continue", {"prompt": " "}, bearer)
    assert_error(bad, 400, "invalid_input", "prompt")
    made = post(client, f"/api/tasks/{parent.pk}/continue", {"prompt": "more"}, bearer)
    assert made.status_code == 201
    body = made.json()
    assert body["branch"] == "claude/fix-1"
    assert body["parent_id"] == parent.pk
    assert body["chain"] == [parent.pk, body["id"]]


def test_pull_request_is_queued_or_refused_with_the_reason(client, user, bearer, settings):
    github_connect(user, settings)
    empty = task_make(user, status=TaskStatus.SUCCEEDED)
    refused = client.post(f"/api/tasks/{empty.pk}/pull-request", headers=bearer)
    assert "no changes" in assert_error(refused, 409, "not_possible")["message"]
    task = task_make(user, status=TaskStatus.SUCCEEDED, pull_request={"bundle": b"bundle"})
    answer = client.post(f"/api/tasks/{task.pk}/pull-request", headers=bearer)
    assert answer.status_code == 202
    assert answer.json()["pull_request"]["state"] == "pending"
    again = client.post(f"/api/tasks/{task.pk}/pull-request", headers=bearer)
    assert_error(again, 409, "not_possible")


def test_auth_status_says_the_method_and_never_a_secret(client, user, bearer, settings):
    settings.ANTHROPIC_API_KEY = "sk-ant-api03-server-key-never-shown-0123456789"
    body = client.get("/api/auth", headers=bearer).json()
    assert body["available"] is True
    assert body["method"] == "api_key"
    assert body["oauth_credential"] is None
    assert "server-key-never-shown" not in json.dumps(body)


def test_auth_status_of_a_saved_oauth_credential(client, user, bearer, make_credential):
    credential = make_credential(user)
    preferences = preferences_get(user=user)
    preferences.use_oauth = True
    preferences.save()
    body = client.get("/api/auth", headers=bearer).json()
    assert body["method"] == "oauth"
    assert "user" in body["oauth_credential"]["source"]
    text = json.dumps(body)
    assert credential.access_token not in text
    assert credential.refresh_token not in text


# --- hostile requests: 4xx, never 500 -----------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "{",
        "[]",
        "null",
        '"text"',
        '{"repository": ' + "9" * 5000 + ', "prompt": "x"}',
        '{"repository": "https://github.com/a/b.git", "prompt": 1e999}',
        '{"repository": "https://github.com/a/b.git", "prompt": "\\ud800"}',
        '{"repository": "https://github.com/a/b.git\\udc00", "prompt": "x"}',
        '{"repository": "https://github.com/a/b.git", "prompt": "x", "branch": "\\udfff"}',
        '{"repository": "https://github.com/a/b.git", "prompt": "x", "open_pull_request": "maybe"}',
        '{"repository": {"a": 1}, "prompt": ["x"]}',
        "\xff\xfe",
    ],
)
def test_hostile_bodies_are_400_json(client, bearer, raw):
    answer = client.post("/api/tasks", raw, content_type="application/json", headers=bearer)
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] in ("invalid_input", "invalid_json")
    assert not CodingTask.objects.exists()


def test_a_body_over_the_upload_limit_is_413(client, bearer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = {"repository": REPO, "prompt": "x" * 20_000}
    assert_error(post(client, "/api/tasks", body, bearer), 413, "too_large")


@pytest.mark.parametrize(
    "path",
    [
        "/api/tasks/" + "9" * 5000,
        "/api/tasks/-1",
        "/api/tasks/1?wait=" + "9" * 5000,
        "/api/tasks/1?wait=31",
        "/api/tasks/1?wait=-1",
        "/api/tasks/1?wait=abc",
        "/api/tasks?limit=" + "9" * 5000,
        "/api/tasks?limit=0",
        "/api/tasks?offset=-5",
        "/api/tasks?status=exploded",
    ],
)
def test_hostile_numbers_in_paths_and_queries_are_4xx(client, user, bearer, path):
    task_make(user)
    answer = client.get(path, headers=bearer)
    assert 400 <= answer.status_code < 500, answer.content
    assert answer.json()["code"] in ("invalid_input", "not_found")


def test_unknown_paths_and_methods_are_json_4xx(client, bearer):
    assert_error(client.get("/api/nothing/here", headers=bearer), 404, "not_found")
    refused = assert_error(client.delete("/api/tasks", headers=bearer), 405, "method_not_allowed")
    assert "GET" in refused["message"]
    assert_error(client.put("/api/tasks/1", headers=bearer), 405, "method_not_allowed")


def test_the_github_webhook_answers_a_wrong_method_in_the_apis_json(client):
    refused = assert_error(client.get("/api/github/webhook"), 405, "method_not_allowed")
    assert "POST" in refused["message"]


# --- the schema ------------------------------------------------------------------------------


def test_the_openapi_schema_is_valid_and_documents_every_endpoint(client):
    schema = client.get("/api/openapi.json").json()
    validate(schema)
    assert schema["openapi"].startswith("3.1")
    assert set(schema["paths"]) >= {
        "/api/tasks",
        "/api/tasks/{task_id}",
        "/api/tasks/{task_id}/cancel",
        "/api/tasks/{task_id}/continue",
        "/api/tasks/{task_id}/pull-request",
        "/api/tasks/{task_id}/run-now-with-api-key",
        "/api/tasks/{task_id}/run-again",
        "/api/tasks/{task_id}/messages",
        "/api/auth",
    }
    components = schema["components"]["schemas"]
    assert {"MessageIn", "MessageSentOut", "EnvironmentRunOut", "TurnOut"} <= set(components)
    environment = components["TaskIn"]["properties"]["environment"]
    assert {"type": "integer"} in environment["anyOf"]
    assert environment["default"] == "auto"
    assert {"messages", "conversation", "environment", "turns"} <= set(
        components["TaskOut"]["properties"]
    )
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert all(op.get("security") == [{"ApiBearer": []}] for op in operations)
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"/api/openapi.json" in docs.content or b"swagger" in docs.content


def waiting_for_a_limit(user) -> tuple[CodingTask, datetime]:
    """A task of the user's waiting two hours for a usage limit's reset, and that reset."""
    reset = timezone.now() + timedelta(hours=2)
    task = task_make(
        user,
        status=TaskStatus.WAITING,
        wait_reason=WaitReason.USAGE_LIMIT,
        waiting_since=timezone.now(),
        requeue_at=reset,
        limit={"limited_until": reset, "verdict": "limited"},
    )
    return task, reset


def test_a_task_waiting_for_a_usage_limit_says_so_and_runs_now_on_the_api_key(
    client, user, other_user, bearer
):
    task, reset = waiting_for_a_limit(user)
    body = client.get(f"/api/tasks/{task.pk}", headers=bearer).json()
    assert body["status"] == "waiting"
    assert body["wait_reason"] == "usage_limit"
    assert body["limited_until"].startswith(reset.strftime("%Y-%m-%dT%H:%M"))
    path = f"/api/tasks/{task.pk}/run-now-with-api-key"
    refused = client.post(path, headers=bearer)
    assert "no API key saved" in assert_error(refused, 409, "not_possible")["message"]
    set_api_key(user, "sk-ant-api03-" + "k" * 40)
    theirs = task_make(other_user, status=TaskStatus.WAITING)
    theirs_path = f"/api/tasks/{theirs.pk}/run-now-with-api-key"
    assert_error(client.post(theirs_path, headers=bearer), 404, "not_found")
    assert CodingTask.objects.get(pk=task.pk).force_api_key is False  # refused: unchanged
    answer = client.post(path, headers=bearer)
    assert answer.status_code == 200
    assert answer.json() == {"status": "queued", "message": "Running now with your API key."}
    assert CodingTask.objects.get(pk=task.pk).force_api_key is True
    again = client.post(path, headers=bearer)
    assert "not waiting any more" in assert_error(again, 409, "not_possible")["message"]


def test_run_now_while_the_running_slots_are_taken_starts_when_one_frees(
    client, user, bearer, settings
):
    settings.AGENT_MAX_RUNNING_TASKS_PER_USER = 1
    set_api_key(user, "sk-ant-api03-" + "k" * 40)
    task_make(user, status=TaskStatus.RUNNING, started_at=timezone.now())
    task, reset = waiting_for_a_limit(user)
    answer = client.post(f"/api/tasks/{task.pk}/run-now-with-api-key", headers=bearer)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["status"] == "waiting"
    assert "running slots are all taken" in body["message"]
    assert "as soon as one is free" in body["message"]
    task.refresh_from_db()
    assert task.force_api_key is True  # on the key when its turn comes
    assert task.requeue_at is not None
    assert task.requeue_at < reset  # its turn, not the reset
