"""The API's follow-ups, messages and environments: the same services as the task page, so the
same rules (finished or failed only, the owner's limits, the message cap, whose environment)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import TokenScope
from environments.models import CacheUse, Environment, TaskEnvironment
from hosting.models import GitHubConnection
from tasks.models import (
    CarriedOver,
    CodingTask,
    PullRequestState,
    TaskConversation,
    TaskMessage,
    TaskStatus,
)
from tasks.results import RunResult
from tasks.run.finish import task_finish
from tests.api.conftest import github_connect
from tests.tasks.conftest import task_make

pytestmark = pytest.mark.django_db

REPO = "https://github.com/a/b.git"


def post(client, path, body, headers):
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


def assert_error(answer, status: int, code: str, field: str | None = None) -> dict:
    assert answer.status_code == status, answer.content
    body = answer.json()
    assert set(body) == {"code", "message", "field"}
    assert (body["code"], body["field"]) == (code, field)
    assert body["message"]
    return body


# --- run again ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT])
def test_run_again_repeats_a_failed_task_as_a_new_linked_one(
    client, user, bearer, status, settings
):
    github_connect(user, settings)  # it asked for a pull request: one that can be made
    parent = task_make(user, status=TaskStatus.SUCCEEDED)
    task = task_make(
        user,
        status=status,
        parent=parent,
        prompt="Fix the bug",
        branch="dev",
        open_pull_request=True,
    )
    answer = client.post(f"/api/tasks/{task.pk}/run-again", headers=bearer)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    again = CodingTask.objects.get(pk=body["id"])
    assert (again.prompt, again.branch, again.open_pull_request) == ("Fix the bug", "dev", True)
    assert again.parent_id == parent.pk
    assert body["status"] == "queued"
    assert body["conversation"]["retry_of"] == task.pk
    assert body["chain"] == [parent.pk, again.pk]


@pytest.mark.parametrize("status", [TaskStatus.SUCCEEDED, TaskStatus.RUNNING, TaskStatus.QUEUED])
def test_run_again_of_a_task_that_did_not_fail_is_409_in_the_services_words(
    client, user, bearer, status
):
    task = task_make(user, status=status)
    refused = client.post(f"/api/tasks/{task.pk}/run-again", headers=bearer)
    assert (
        "failed, timed out or was cancelled"
        in assert_error(refused, 409, "not_possible")["message"]
    )
    assert CodingTask.objects.count() == 1


def test_run_again_respects_the_per_user_limits(client, user, bearer, settings):
    settings.AGENT_MAX_RUNNING_TASKS_PER_USER = 0
    settings.AGENT_MAX_QUEUED_TASKS_PER_USER = 1
    task_make(user)  # queued: the one allowed
    failed = task_make(user, status=TaskStatus.FAILED)
    refused = client.post(f"/api/tasks/{failed.pk}/run-again", headers=bearer)
    assert "your limits are" in assert_error(refused, 409, "task_limit")["message"]
    assert CodingTask.objects.count() == 2


# --- continue ----------------------------------------------------------------------------------


def test_continue_works_for_a_failed_task_with_no_pull_request(client, user, bearer):
    failed = task_make(user, status=TaskStatus.FAILED, branch="dev", result_text="It broke.")
    made = post(client, f"/api/tasks/{failed.pk}/continue", {"prompt": "Try the other way"}, bearer)
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["parent_id"], body["branch"], body["prompt"]) == (
        failed.pk,
        "dev",
        "Try the other way",
    )
    assert body["turns"] == [
        {"id": failed.pk, "status": "failed", "prompt": "p", "answer": "It broke."},
        {"id": body["id"], "status": "queued", "prompt": "Try the other way", "answer": ""},
    ]
    assert CodingTask.objects.get(pk=body["id"]).open_pull_request is False


@pytest.mark.parametrize("status", [TaskStatus.RUNNING, TaskStatus.QUEUED, TaskStatus.WAITING])
def test_continue_of_an_unfinished_task_is_409_in_the_services_words(client, user, bearer, status):
    task = task_make(user, status=status)
    refused = post(client, f"/api/tasks/{task.pk}/continue", {"prompt": "more"}, bearer)
    assert "not finished yet" in assert_error(refused, 409, "not_possible")["message"]
    assert CodingTask.objects.count() == 1


def test_continue_with_an_empty_prompt_is_400_naming_prompt(client, user, bearer):
    done = task_make(user, status=TaskStatus.SUCCEEDED)
    refused = post(client, f"/api/tasks/{done.pk}/continue", {"prompt": "  "}, bearer)
    assert_error(refused, 400, "invalid_input", "prompt")
    assert CodingTask.objects.count() == 1


@pytest.mark.parametrize(
    ("action", "body"),
    [("continue", {"prompt": "more"}), ("run-again", {}), ("messages", {"text": "more"})],
)
def test_a_pull_request_task_after_the_github_token_expired_is_409_saying_so(
    client, user, bearer, settings, action, body
):
    # The request has no pull-request box to untick: the account needs a new token.
    github_connect(user, settings)
    GitHubConnection.objects.filter(owner=user).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    task = task_make(
        user,
        status=TaskStatus.FAILED,
        open_pull_request=True,
        pull_request={"state": PullRequestState.OPENED, "branch": "claude/fix-1"},
    )
    refused = post(client, f"/api/tasks/{task.pk}/{action}", body, bearer)
    message = assert_error(refused, 409, "not_possible")["message"]
    assert "GitHub token expired" in message
    assert "need a new one" in message
    assert "untick" not in message
    assert CodingTask.objects.count() == 1


# --- messages ----------------------------------------------------------------------------------


def test_a_message_to_a_running_task_is_queued_for_its_agent(client, user, bearer):
    running = task_make(user, status=TaskStatus.RUNNING)
    answer = post(client, f"/api/tasks/{running.pk}/messages", {"text": "Also the tests"}, bearer)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["kind"] == "message"
    assert body["task"] is None
    assert (body["message"]["seq"], body["message"]["text"]) == (1, "Also the tests")
    assert body["message"]["delivered_at"] is None
    second = post(client, f"/api/tasks/{running.pk}/messages", {"text": "ünï 🐍"}, bearer)
    assert second.json()["message"]["seq"] == 2
    read = client.get(f"/api/tasks/{running.pk}", headers=bearer).json()
    assert [m["text"] for m in read["messages"]] == ["Also the tests", "ünï 🐍"]
    assert TaskMessage.objects.filter(task=running).count() == 2


def test_a_message_to_a_finished_task_starts_a_follow_up(client, user, bearer):
    done = task_make(user, status=TaskStatus.SUCCEEDED)
    answer = post(client, f"/api/tasks/{done.pk}/messages", {"text": "Now the docs"}, bearer)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["kind"] == "follow_up"
    assert body["message"] is None
    follow_up = CodingTask.objects.get(pk=body["task"]["id"])
    assert (follow_up.parent_id, follow_up.prompt) == (done.pk, "Now the docs")
    assert body["task"]["chain"] == [done.pk, follow_up.pk]
    assert not TaskMessage.objects.exists()


def test_a_message_over_the_cap_is_400_saying_the_limit(client, user, bearer):
    running = task_make(user, status=TaskStatus.RUNNING)
    for text in ("x" * (64 * 1024 + 1), "é" * (40 * 1024), "x" * 1_000_000):
        refused = post(client, f"/api/tasks/{running.pk}/messages", {"text": text}, bearer)
        assert (
            "the limit is 65,536" in assert_error(refused, 400, "invalid_input", "text")["message"]
        )
    exactly = post(client, f"/api/tasks/{running.pk}/messages", {"text": "x" * 64 * 1024}, bearer)
    assert exactly.status_code == 201
    assert TaskMessage.objects.count() == 1


@pytest.mark.parametrize(
    ("text", "phrase"),
    [(" \n ", "Write a message"), ("a\x00b", "NUL"), ("a\ud800", "surrogate")],
)
def test_bad_message_text_is_400_naming_text(client, user, bearer, text, phrase):
    running = task_make(user, status=TaskStatus.RUNNING)
    raw = json.dumps({"text": text})  # a lone surrogate travels as its \\u escape
    answer = client.post(
        f"/api/tasks/{running.pk}/messages", raw, content_type="application/json", headers=bearer
    )
    assert phrase in assert_error(answer, 400, "invalid_input", "text")["message"]
    assert not TaskMessage.objects.exists()


def test_a_message_when_messages_are_off_is_409(client, user, bearer, settings):
    settings.AGENT_MESSAGES = False
    running = task_make(user, status=TaskStatus.RUNNING)
    refused = post(client, f"/api/tasks/{running.pk}/messages", {"text": "more"}, bearer)
    assert "turned off" in assert_error(refused, 409, "not_possible")["message"]
    assert not TaskMessage.objects.exists()


def test_a_message_when_the_run_is_ending_is_kept_and_becomes_a_follow_up(
    client, user, bearer, settings
):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    running = task_make(user, status=TaskStatus.RUNNING)
    TaskConversation.objects.filter(pk=running.pk).update(messages_closed=True)
    answer = post(client, f"/api/tasks/{running.pk}/messages", {"text": "more"}, bearer)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["kind"] == "message"
    kept = body["message"]
    assert (kept["late"], kept["state"], kept["follow_up_id"]) == (True, "late", None)
    assert "becomes a follow-up when the task finishes" in kept["note"]

    task_finish(task_id=running.pk, result=RunResult(TaskStatus.SUCCEEDED, ""))
    follow_up = CodingTask.objects.get(parent=running)
    assert follow_up.prompt == "more"
    [message] = client.get(f"/api/tasks/{running.pk}", headers=bearer).json()["messages"]
    assert (message["state"], message["follow_up_id"]) == ("follow_up", follow_up.pk)
    assert message["note"] == f"became follow-up #{follow_up.pk}"
    assert message["follow_up_url"].endswith(f"/tasks/{follow_up.pk}/")


def test_a_late_message_the_limits_refuse_says_so_on_read(client, user, bearer, settings):
    settings.AGENT_MAX_RUNNING_TASKS_PER_USER = 0
    settings.AGENT_MAX_QUEUED_TASKS_PER_USER = 1
    task_make(user)  # queued: the one allowed
    running = task_make(user, status=TaskStatus.RUNNING)
    TaskConversation.objects.filter(pk=running.pk).update(messages_closed=True)
    post(client, f"/api/tasks/{running.pk}/messages", {"text": "more"}, bearer)
    task_finish(task_id=running.pk, result=RunResult(TaskStatus.SUCCEEDED, ""))
    [message] = client.get(f"/api/tasks/{running.pk}", headers=bearer).json()["messages"]
    assert message["state"] == "not_delivered"
    assert message["note"].startswith("not delivered: Not queued: you have 0 tasks running")
    assert message["text"] == "more"  # nothing lost: continue by hand
    assert CodingTask.objects.count() == 2


def test_a_message_that_would_start_a_follow_up_respects_the_limits(client, user, bearer, settings):
    settings.AGENT_MAX_RUNNING_TASKS_PER_USER = 0
    settings.AGENT_MAX_QUEUED_TASKS_PER_USER = 1
    task_make(user)
    done = task_make(user, status=TaskStatus.SUCCEEDED)
    refused = post(client, f"/api/tasks/{done.pk}/messages", {"text": "more"}, bearer)
    assert_error(refused, 409, "task_limit")
    assert CodingTask.objects.count() == 2


# --- ownership and scope -----------------------------------------------------------------------


def test_another_users_task_is_404_for_run_again_and_messages(client, other_user, bearer):
    failed = task_make(other_user, status=TaskStatus.FAILED)
    running = task_make(other_user, status=TaskStatus.RUNNING)
    assert_error(client.post(f"/api/tasks/{failed.pk}/run-again", headers=bearer), 404, "not_found")
    for task in (failed, running):
        sent = post(client, f"/api/tasks/{task.pk}/messages", {"text": "hi"}, bearer)
        assert_error(sent, 404, "not_found")
    assert CodingTask.objects.count() == 2
    assert not TaskMessage.objects.exists()


def test_a_read_token_can_neither_run_again_nor_send(client, user, make_token):
    read = {"Authorization": f"Bearer {make_token(user, scope=TokenScope.READ).secret}"}
    failed = task_make(user, status=TaskStatus.FAILED)
    running = task_make(user, status=TaskStatus.RUNNING)
    assert_error(
        client.post(f"/api/tasks/{failed.pk}/run-again", headers=read), 403, "insufficient_scope"
    )
    sent = post(client, f"/api/tasks/{running.pk}/messages", {"text": "hi"}, read)
    assert_error(sent, 403, "insufficient_scope")
    assert CodingTask.objects.count() == 2
    assert not TaskMessage.objects.exists()


# --- the conversation on read ------------------------------------------------------------------


def test_read_says_how_the_conversation_carried_over(client, user, bearer):
    parent = task_make(user, status=TaskStatus.SUCCEEDED, prompt="First", result_text="Did it.")
    child = task_make(user, status=TaskStatus.SUCCEEDED, parent=parent, prompt="Then")
    fresh = client.get(f"/api/tasks/{parent.pk}", headers=bearer).json()
    assert fresh["conversation"] == {"carried": "none", "note": "", "retry_of": None}
    for carried, word in ((CarriedOver.TRANSCRIPT, "resumed"), (CarriedOver.SUMMARY, "summarised")):
        TaskConversation.objects.filter(pk=child.pk).update(carried=carried, carried_note="why")
        body = client.get(f"/api/tasks/{child.pk}", headers=bearer).json()
        assert body["conversation"]["carried"] == word
        assert body["conversation"]["note"] == "why"
    assert [(t["prompt"], t["answer"]) for t in body["turns"]] == [
        ("First", "Did it."),
        ("Then", ""),
    ]


# --- environments ------------------------------------------------------------------------------


def _environment(owner, *, name: str = "py", patterns: list[str] | None = None, **values):
    return Environment.objects.create(
        owner=owner, name=name, image="python:3.12", repo_patterns=patterns or [], **values
    )


def test_create_picks_the_matching_environment_by_default(client, user, bearer):
    matching = _environment(user, patterns=["https://github.com/a/*"])
    made = post(client, "/api/tasks", {"repository": REPO, "prompt": "x"}, bearer)
    assert made.status_code == 201, made.content
    assert made.json()["environment"]["id"] == matching.pk
    assert made.json()["environment"]["name"] == "py"
    assert TaskEnvironment.objects.get(pk=made.json()["id"]).environment == matching
    none = post(
        client, "/api/tasks", {"repository": REPO, "prompt": "x", "environment": "none"}, bearer
    )
    assert none.json()["environment"] is None
    assert not TaskEnvironment.objects.filter(pk=none.json()["id"]).exists()


@pytest.mark.parametrize("as_number", [True, False])
def test_create_with_an_environment_by_id(client, user, bearer, as_number):
    chosen = _environment(user, name="node")
    choice = chosen.pk if as_number else str(chosen.pk)
    made = post(
        client, "/api/tasks", {"repository": REPO, "prompt": "x", "environment": choice}, bearer
    )
    assert made.status_code == 201, made.content
    assert made.json()["environment"]["name"] == "node"


def test_a_shared_environment_of_another_user_may_be_chosen(client, other_user, bearer):
    shared = _environment(other_user, name="team", shared=True)
    body = {"repository": REPO, "prompt": "x", "environment": shared.pk}
    assert post(client, "/api/tasks", body, bearer).json()["environment"]["name"] == "team"


@pytest.mark.parametrize(
    "choice",
    [
        "private",
        "9999",
        "9" * 18,
        "9" * 19,
        "-1",
        "²",
        "\u0661",
        "9" * 5000,
        "",
        "auto ",
        "x" * 10_000,
        -1,
        10**30,
    ],
)
def test_an_environment_the_user_may_not_use_is_400_naming_environment(
    client, user, other_user, bearer, choice
):
    private = _environment(other_user, name="theirs")
    value = private.pk if choice == "private" else choice
    body = {"repository": REPO, "prompt": "x", "environment": value}
    answer = post(client, "/api/tasks", body, bearer)
    if choice == "":  # empty is the default, as on the form
        assert answer.status_code == 201
        return
    assert_error(answer, 400, "invalid_input", "environment")
    assert not CodingTask.objects.exists()  # nothing half made
    assert not TaskEnvironment.objects.exists()


@pytest.mark.parametrize("value", [True, 1.0, None, [], {}])
def test_an_environment_of_the_wrong_type_is_400(client, user, bearer, value):
    _environment(user)
    body = {"repository": REPO, "prompt": "x", "environment": value}
    assert_error(post(client, "/api/tasks", body, bearer), 400, "invalid_input", "environment")
    assert not CodingTask.objects.exists()


def test_read_says_which_environment_ran_with_its_version_cache_and_setup(client, user, bearer):
    environment = _environment(user)
    task = task_make(user, status=TaskStatus.SUCCEEDED, finished_at=timezone.now())
    TaskEnvironment.objects.create(
        task=task,
        environment=environment,
        version=3,
        cache=CacheUse.HIT,
        setup_seconds=1.5,
        setup_exit_code=0,
    )
    body = client.get(f"/api/tasks/{task.pk}", headers=bearer).json()
    assert body["environment"] == {
        "id": environment.pk,
        "name": "py",
        "version": 3,
        "cache": "hit",
        "setup_seconds": 1.5,
        "setup_exit_code": 0,
    }
    environment.delete()
    gone = client.get(f"/api/tasks/{task.pk}", headers=bearer).json()["environment"]
    assert (gone["id"], gone["name"]) == (None, "py")
