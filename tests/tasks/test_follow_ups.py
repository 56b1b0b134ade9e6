"""Continue any finished task, run a failed or cancelled one again, and message a running agent,
from the task page: who may, what is refused and why, and what the page shows."""

import html
import json
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from gateway.runtime import placeholder_new
from hosting.models import GitHubConnection
from tasks.follow_ups import task_continue, task_message_send, task_run_again
from tasks.models import (
    CarriedOver,
    CodingTask,
    TaskConversation,
    TaskMessage,
    TaskStatus,
    TranscriptState,
)
from tasks.run.gateway import task_gateway_again
from tasks.run.log import TaskLog
from tasks.run.messages import TaskMessageBox
from tasks.validation import TaskInputError
from tests.gateway.conftest import UnixHTTPConnection
from tests.tasks.conftest import set_api_key, task_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("queued_only")]

URL = "https://github.com/a/b.git"


def finished(owner, status=TaskStatus.FAILED, **values) -> CodingTask:
    values.setdefault("prompt", "Fix the parser")
    values.setdefault("repo_url", URL)
    return task_make(owner, status=status, result_text="I could not.", **values)


@pytest.mark.parametrize(
    "status", [TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT]
)
def test_any_finished_task_can_be_continued_from_the_page(user, user_client, status) -> None:
    parent = finished(user, status=status, branch="dev")
    page = user_client.get(reverse("tasks:detail", args=[parent.pk])).content.decode()
    assert "Continue the task" in page
    response = user_client.post(
        reverse("tasks:continue", args=[parent.pk]), {"prompt": "Now the empty case"}
    )
    follow_up = CodingTask.objects.exclude(pk=parent.pk).get()
    assert response.url == reverse("tasks:detail", args=[follow_up.pk])
    assert (follow_up.parent, follow_up.prompt, follow_up.branch) == (
        parent,
        "Now the empty case",
        "dev",
    )
    assert follow_up.status == TaskStatus.QUEUED
    assert not follow_up.open_pull_request


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING])
def test_an_unfinished_task_is_not_continued_but_takes_messages(user, user_client, status):
    task = task_make(user, status=status)
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "Continue the task" not in page
    assert "Send a message" in page
    with pytest.raises(TaskInputError, match="not finished"):
        task_continue(parent=task, prompt="more")


@pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT])
def test_run_again_repeats_the_prompt_and_inputs_as_a_new_linked_task(
    user, user_client, status, settings
):
    # It asked for a pull request: one is possible (a token, the repository on that GitHub).
    settings.GITHUB_API_URL = "https://api.github.com"
    GitHubConnection.objects.create(owner=user, token="github_pat_x", login="o")
    grandparent = finished(user, status=TaskStatus.SUCCEEDED)
    task = finished(user, status=status, parent=grandparent, branch="dev", open_pull_request=True)
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "Run again" in page
    response = user_client.post(reverse("tasks:run_again", args=[task.pk]))
    again = CodingTask.objects.order_by("-pk")[0]
    assert response.url == reverse("tasks:detail", args=[again.pk])
    assert again.pk != task.pk
    assert (again.prompt, again.repo_url, again.branch, again.open_pull_request) == (
        task.prompt,
        task.repo_url,
        task.branch,
        True,
    )
    assert again.parent == grandparent  # the same place in its chain: the same start
    assert again.conversation.retry_of == task
    page = user_client.get(response.url).content.decode()
    assert f"runs task {task.pk} again" in page


def test_a_succeeded_task_is_not_run_again(user, user_client):
    task = finished(user, status=TaskStatus.SUCCEEDED)
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "Run again</button>" not in page
    user_client.post(reverse("tasks:run_again", args=[task.pk]))
    assert CodingTask.objects.count() == 1


def test_continuing_a_pull_request_after_the_github_token_expired_says_to_replace_it(
    user, user_client, settings
):
    settings.GITHUB_API_URL = "https://api.github.com"
    GitHubConnection.objects.create(
        owner=user, token="github_pat_x", login="o", expires_at=timezone.now() - timedelta(days=1)
    )
    parent = finished(
        user, open_pull_request=True, pull_request={"state": "opened", "branch": "claude/fix-1"}
    )
    answer = user_client.post(
        reverse("tasks:continue", args=[parent.pk]), {"prompt": "more"}, follow=True
    )
    said = " ".join(str(message) for message in answer.context["messages"])
    assert "updates its pull request" in said
    assert "GitHub token expired" in said
    assert "untick" not in said
    assert CodingTask.objects.count() == 1


def test_follow_ups_and_run_again_respect_the_task_limits(user):
    parent = finished(user)
    for _ in range(5):  # 2 running slots + 3 waiting
        task_continue(parent=parent, prompt="more")
    with pytest.raises(TaskInputError, match="Not queued"):
        task_continue(parent=parent, prompt="one more")
    with pytest.raises(TaskInputError, match="Not queued"):
        task_run_again(task=parent)
    with pytest.raises(TaskInputError, match="Not queued"):
        task_message_send(task=parent, text="a message after the end is a follow-up")
    assert CodingTask.objects.count() == 6


def test_another_users_task_is_not_found_for_every_action(user, other_user, client):
    finished_task = finished(user)
    running = task_make(user, status=TaskStatus.RUNNING)
    client.force_login(other_user)
    for name, task, data in (
        ("tasks:continue", finished_task, {"prompt": "mine now"}),
        ("tasks:run_again", finished_task, {}),
        ("tasks:message", running, {"text": "hello"}),
        ("tasks:message", finished_task, {"text": "hello"}),
    ):
        assert client.post(reverse(name, args=[task.pk]), data).status_code == 404
    assert CodingTask.objects.count() == 2
    assert not TaskMessage.objects.exists()


def test_the_actions_need_post_and_csrf(user):
    task = task_make(user, status=TaskStatus.RUNNING)
    done = finished(user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    for name, target, data in (
        ("tasks:continue", done, {"prompt": "x"}),
        ("tasks:run_again", done, {}),
        ("tasks:message", task, {"text": "x"}),
    ):
        url = reverse(name, args=[target.pk])
        assert client.get(url).status_code == 405
        assert client.post(url, data).status_code == 403
    assert CodingTask.objects.count() == 2
    assert not TaskMessage.objects.exists()


def test_messages_to_a_running_task_are_numbered_in_order(user, user_client):
    task = task_make(user, status=TaskStatus.RUNNING)
    for text in ("first", "zweite Nachricht 🙂", "\u202eeverse"):
        response = user_client.post(reverse("tasks:message", args=[task.pk]), {"text": text})
        assert response.url == reverse("tasks:detail", args=[task.pk])
    assert list(TaskMessage.objects.filter(task=task).values_list("seq", "text")) == [
        (1, "first"),
        (2, "zweite Nachricht 🙂"),
        (3, "\u202eeverse"),
    ]
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "Message sent" in page
    sent = html.unescape(page[page.index('id="sent-messages"') :])
    assert "zweite Nachricht 🙂" in sent
    assert "waiting for the agent's next step" in sent


def test_a_one_megabyte_message_is_refused_with_its_size(user, user_client):
    task = task_make(user, status=TaskStatus.RUNNING)
    page = user_client.post(
        reverse("tasks:message", args=[task.pk]), {"text": "a" * 1024 * 1024}, follow=True
    ).content.decode()
    assert "The message is 1,048,576 bytes; the limit is 65,536." in page
    assert not TaskMessage.objects.exists()


def test_the_limit_counts_bytes_not_characters(user, settings):
    settings.AGENT_MESSAGE_MAX_BYTES = 100
    task = task_make(user, status=TaskStatus.RUNNING)
    task_message_send(task=task, text="a" * 100)
    with pytest.raises(TaskInputError, match="104 bytes"):
        task_message_send(task=task, text="🙂" * 26)


@pytest.mark.parametrize("text", ["", "   \n ", "nul \x00 inside"])
def test_empty_or_nul_messages_are_refused(user, text):
    task = task_make(user, status=TaskStatus.RUNNING)
    with pytest.raises(TaskInputError):
        task_message_send(task=task, text=text)


def test_a_message_after_the_task_ended_becomes_a_follow_up(user, user_client):
    task = finished(user, status=TaskStatus.SUCCEEDED)
    response = user_client.post(
        reverse("tasks:message", args=[task.pk]), {"text": "and the empty case"}
    )
    follow_up = CodingTask.objects.exclude(pk=task.pk).get()
    assert response.url == reverse("tasks:detail", args=[follow_up.pk])
    assert (follow_up.parent, follow_up.prompt) == (task, "and the empty case")
    assert not TaskMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_gateway_box_delivers_marks_and_closes(user):
    task = task_make(user, status=TaskStatus.RUNNING)
    box = TaskMessageBox(task_id=task.pk)
    task_message_send(task=task, text="one")
    task_message_send(task=task, text="two")
    got = box.fetch(after=0, final=False)
    assert got.messages == [(1, "one"), (2, "two")]
    assert not got.closed
    assert box.fetch(after=2, final=True).closed  # final, nothing new: closed
    delivered = TaskMessage.objects.filter(task=task, delivered_at__isnull=False).count()
    assert delivered == 2
    # A final poll that finds something does not close.
    other = task_make(user, status=TaskStatus.RUNNING)
    task_message_send(task=other, text="x")
    again = TaskMessageBox(task_id=other.pk).fetch(after=0, final=True)
    assert again.messages == [(1, "x")]
    assert not again.closed
    assert not connection.in_atomic_block


def test_the_page_shows_the_chain_as_one_conversation(user, user_client):
    first = finished(
        user,
        status=TaskStatus.SUCCEEDED,
        prompt="Add a parser",
        diff="diff --git a/p.py b/p.py\n+++ b/p.py\n+def parse(): ...\n",
        changed_files=[{"status": "A", "path": "p.py"}],
    )
    TaskMessage.objects.create(task=first, seq=1, text="use the stdlib only")
    second = finished(user, status=TaskStatus.FAILED, prompt="Now the empty case", parent=first)
    TaskConversation.objects.filter(pk=second.pk).update(
        carried=CarriedOver.SUMMARY,
        carried_note="The earlier session was not carried over (too large): summarised.",
    )
    TaskConversation.objects.filter(pk=first.pk).update(transcript_state=TranscriptState.TOO_LARGE)
    page = user_client.get(reverse("tasks:detail", args=[second.pk])).content.decode()
    for words in (
        "Conversation",
        "Add a parser",
        "use the stdlib only",
        "Now the empty case",
        "I could not.",
        "+def parse(): ...",
        "The earlier session was not carried over (too large): summarised.",
    ):
        assert words in page
    TaskConversation.objects.filter(pk=second.pk).update(
        carried=CarriedOver.TRANSCRIPT, carried_note=""
    )
    resumed = user_client.get(reverse("tasks:detail", args=[second.pk])).content.decode()
    assert "The agent resumed the conversation above." in resumed
    chain = page[page.index('id="task-chain"') :]
    assert (
        chain.index("Add a parser") < chain.index("use the stdlib") < chain.index("Now the empty")
    )


@pytest.mark.django_db(transaction=True)
def test_a_gateway_put_back_after_a_takeover_still_hands_out_the_messages(user, tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="fut-", dir="/tmp"))
    try:
        placeholder = placeholder_new()
        set_api_key(user, "sk-ant-api03-takeover-messages-0123456789")
        task = task_make(
            user,
            status=TaskStatus.RUNNING,
            auth_method="api_key",
            auth_source="user",
            runtime={"gateway_dir": str(folder), "gateway_placeholder": placeholder},
        )
        task_message_send(task=task, text="still there?")
        log = TaskLog(task_id=task.pk, secrets=[], max_bytes=10_000)
        gateway = task_gateway_again(CodingTask.objects.get(pk=task.pk), log)
        assert gateway is not None
        try:
            conn = UnixHTTPConnection(folder / "gateway.sock")
            conn.request(
                "GET",
                "/_runner/messages?after=0&wait=0",
                headers={"authorization": f"Bearer {placeholder}"},
            )
            response = conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read()) == {
                "seq": 1,
                "type": "message",
                "text": "still there?",
            }
        finally:
            gateway.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
