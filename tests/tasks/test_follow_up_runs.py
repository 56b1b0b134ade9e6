"""Follow-ups and messages end to end in real containers (fake-claude image) on the project's
Docker engine: a failed task on a file:// repository continued with its session resumed and its
commits underneath, a message typed while the agent works reaching it in the same run, and one
typed after the agent answered everything becoming the follow-up."""

import json
import subprocess
import threading

import pytest
from django.db import connection

from tasks.follow_ups import task_continue, task_message_send, task_run_again
from tasks.models import (
    CarriedOver,
    CodingTask,
    TaskConversation,
    TaskMessage,
    TaskPullRequest,
    TaskStatus,
    TranscriptState,
)
from tasks.queue import task_after_run
from tasks.run.runner import task_run
from tasks.services import task_create
from tasks.signals import task_finished
from tests.tasks.conftest import set_api_key, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

KEY = "sk-ant-api03-follow-up-test-key-0123456789"


def test_a_failed_task_on_a_local_repository_continues_with_its_session_and_commits(
    agent_settings, user, local_repo
):
    set_api_key(user, KEY)
    first = task_create(
        owner=user, repo_url=local_repo, prompt="SESSION_UUID FAIL MODIFY:keep.txt first try"
    )
    first.refresh_from_db()
    assert first.status == TaskStatus.FAILED, (first.error_message, first.log)
    kept = TaskConversation.objects.get(pk=first.pk)
    assert kept.transcript_state == TranscriptState.KEPT, (kept.transcript_note, first.log)
    assert kept.session_id
    assert "first try" in kept.transcript
    assert first.pull_request.bundle  # its commits, though it failed

    follow_up = task_continue(parent=first, prompt="SESSION_UUID REPORT_SESSION now the rest")
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.SUCCEEDED, (follow_up.error_message, follow_up.log)
    report = json.loads(follow_up.result_text)
    assert report == {"session_id": kept.session_id, "resumed": True, "earlier_user_turns": 1}
    carried = TaskConversation.objects.get(pk=follow_up.pk)
    assert carried.carried == CarriedOver.TRANSCRIPT
    assert carried.carried_note == ""
    # It started from the first task's commit: keep.txt was changed there, not here.
    paths = {f["path"] for f in follow_up.changed_files}
    assert paths == {"AGENT_NOTES.md"}
    assert "+now the rest" in follow_up.diff or "now the rest" in follow_up.diff

    # Run again: the same prompt on the same start, a new task.
    again = task_run_again(task=first)
    again.refresh_from_db()
    assert again.prompt == first.prompt
    assert again.status == TaskStatus.FAILED
    assert again.conversation.retry_of_id == first.pk
    assert {f["path"] for f in again.changed_files} == {"AGENT_NOTES.md", "keep.txt"}


def test_a_follow_up_whose_earlier_commits_do_not_build_fails_saying_so(
    agent_settings, user, local_repo
):
    set_api_key(user, KEY)
    first = task_create(owner=user, repo_url=local_repo, prompt="SESSION_UUID first try")
    first.refresh_from_db()
    assert first.pull_request.bundle, first.log
    # Its commits now claim to build on an unrelated commit of the repository.
    bare = local_repo.removeprefix("file://")
    git = ["git", "-C", bare, "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    tree = subprocess.run(
        [*git, "mktree"], input="", capture_output=True, text=True, check=True
    ).stdout.strip()
    other = subprocess.run(
        [*git, "commit-tree", tree, "-m", "unrelated"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run([*git, "update-ref", "refs/heads/unrelated", other], check=True)
    TaskPullRequest.objects.filter(pk=first.pk).update(start_commit=other)
    follow_up = task_continue(parent=first, prompt="REPORT_SESSION more")
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.FAILED, follow_up.log
    assert follow_up.error_message.startswith("Could not clone the repository"), (
        follow_up.error_message
    )
    assert "commits" in follow_up.error_message  # the earlier task's, read in on the worker
    assert "Could not clone the repository" in follow_up.log


def test_a_follow_up_reads_the_earlier_commits_in_while_its_container_is_made(
    agent_settings, user, local_repo
):
    set_api_key(user, KEY)
    first = task_create(owner=user, repo_url=local_repo, prompt="SESSION_UUID MODIFY:keep.txt one")
    first.refresh_from_db()
    assert first.pull_request.bundle, first.log
    follow_up = task_continue(parent=first, prompt="REPORT_SESSION two")
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.SUCCEEDED, follow_up.log
    # Where it started is said and recorded once the commits are in: on top of the first's.
    start = TaskPullRequest.objects.get(pk=follow_up.pk).start_commit
    assert start
    assert start != TaskPullRequest.objects.get(pk=first.pk).start_commit
    assert f"at {start[:12]} on the worker" in follow_up.log
    assert {f["path"] for f in follow_up.changed_files} == {"AGENT_NOTES.md"}


def test_without_a_transcript_the_follow_up_runs_with_a_summary(agent_settings, user, local_repo):
    set_api_key(user, KEY)
    first = task_create(owner=user, repo_url=local_repo, prompt="no uuid session here")
    first.refresh_from_db()
    assert first.status == TaskStatus.SUCCEEDED, first.log
    assert TaskConversation.objects.get(pk=first.pk).transcript_state != TranscriptState.KEPT
    follow_up = task_continue(parent=first, prompt="REPORT_SESSION and then")
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.SUCCEEDED, follow_up.log
    assert json.loads(follow_up.result_text)["resumed"] is False
    carried = TaskConversation.objects.get(pk=follow_up.pk)
    assert carried.carried == CarriedOver.SUMMARY
    assert "earlier prompts and answers in its prompt" in carried.carried_note


def test_a_message_sent_while_the_agent_works_reaches_it_in_the_same_run(
    agent_settings, user, local_repo
):
    set_api_key(user, KEY)
    sent: list[object] = []

    def send_when_running() -> None:
        try:
            task = wait_for(
                lambda: CodingTask.objects.filter(
                    owner=user, status=TaskStatus.RUNNING, runtime__container_id__gt=""
                ).first(),
                timeout=60,
            )
            sent.append(task_message_send(task=task, text="also mention the empty case 🙂"))
        finally:
            connection.close()

    sender = threading.Thread(target=send_when_running)
    sender.start()
    task = task_create(owner=user, repo_url=local_repo, prompt="SESSION_UUID SLEEP:6 first")
    sender.join(timeout=30)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log)
    assert len(sent) == 1
    message = task.messages.get()
    assert message.delivered_at is not None
    assert "Your message reached the agent: also mention the empty case 🙂" in task.log
    assert "You said: also mention the empty case 🙂" in task.log
    # The agent answered it in this session: the transcript holds both turns.
    transcript = TaskConversation.objects.get(pk=task.pk).transcript
    assert "also mention the empty case" in transcript
    assert TaskConversation.objects.get(pk=task.pk).messages_closed


def test_what_a_follow_up_starts_from_is_kept_before_the_end_is_announced(
    agent_settings, user, local_repo
):
    set_api_key(user, KEY)
    seen: list[tuple[bool, str]] = []

    def on_finished(sender, task_id, **kwargs):
        bundle = TaskPullRequest.objects.values_list("bundle", flat=True).get(pk=task_id)
        state = TaskConversation.objects.values_list("transcript_state", flat=True).get(pk=task_id)
        seen.append((bool(bundle), state))

    task_finished.connect(on_finished, dispatch_uid="follow-up-order-test")
    try:
        task = task_create(owner=user, repo_url=local_repo, prompt="SESSION_UUID MODIFY:keep.txt")
    finally:
        task_finished.disconnect(dispatch_uid="follow-up-order-test")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.log
    assert seen == [(True, TranscriptState.KEPT)]


# The agent answers everything at once: it closes its message channel itself (the poll its
# entrypoint makes with final=1, through the same gateway), then takes its time to end.
CLOSE_THEN_LINGER = r"""#!/bin/sh
head='GET /_runner/messages?after=0&wait=0&final=1 HTTP/1.1\r\nHost: gateway\r\n'
printf "${head}Authorization: Bearer %s\r\nConnection: close\r\n\r\n" "$ANTHROPIC_API_KEY" \
    | socat -t 30 - "TCP:${ANTHROPIC_BASE_URL#http://}" | head -n 1 >&2
sleep 8
echo '{"type":"result","subtype":"success","is_error":false,"result":"done, nothing more"}'
"""


def test_a_message_after_the_agent_answered_everything_becomes_the_follow_up(
    agent_settings, user, local_repo
):
    agent_settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    set_api_key(user, KEY)
    task = task_create(owner=user, repo_url=local_repo, prompt=CLOSE_THEN_LINGER)
    sent: list[tuple[str, TaskMessage | CodingTask]] = []

    def send_once_closed() -> None:
        try:
            wait_for(
                lambda: TaskConversation.objects.filter(pk=task.pk, messages_closed=True).exists(),
                timeout=60,
                interval=0.1,
            )
            running = CodingTask.objects.get(pk=task.pk)
            sent.append((running.status, task_message_send(task=running, text="LATE the docs")))
        finally:
            connection.close()

    sender = threading.Thread(target=send_once_closed)
    sender.start()
    task_after_run(task_id=task.pk, result=task_run(task_id=task.pk))
    sender.join(timeout=30)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log)
    [(status_when_sent, message)] = sent
    assert status_when_sent == TaskStatus.RUNNING
    assert isinstance(message, TaskMessage)
    assert message.late
    assert "LATE the docs" not in task.log  # the ended run never got it
    message.refresh_from_db()
    assert message.delivered_at is None
    follow_up = CodingTask.objects.get(parent=task)
    assert message.follow_up == follow_up
    assert (follow_up.prompt, follow_up.status) == ("LATE the docs", TaskStatus.QUEUED)
    # And it runs, on the first task's result, with the message as its request.
    task_run(task_id=follow_up.pk)
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.SUCCEEDED, (follow_up.error_message, follow_up.log)
    assert "LATE the docs" in follow_up.diff
