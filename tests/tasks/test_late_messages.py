"""A message sent once the agent has answered everything, while its task is still ending: kept,
never handed to that run, and made into one follow-up when the task finishes (once, whoever
finishes it), or left on the page saying why not, for its owner to continue by hand."""

import html
import threading

import docker
import pytest
from django.db import connection
from django.urls import reverse

from tasks import follow_ups, recovery
from tasks.follow_ups import (
    late_messages_sweep,
    task_late_messages_follow_up,
    task_message_send,
)
from tasks.models import CodingTask, TaskConversation, TaskMessage, TaskStatus
from tasks.queue import queue_sweep
from tasks.recovery import RecoveryReport
from tasks.results import RunResult
from tasks.run.conversation import conversation_inputs
from tasks.run.finish import task_finish
from tasks.run.messages import TaskMessageBox
from tests.tasks.conftest import task_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("queued_only")]


def ending(owner, **values) -> CodingTask:
    """A running task whose agent has answered everything: its gateway closed the channel."""
    task = task_make(owner, status=TaskStatus.RUNNING, prompt="Fix the parser", **values)
    TaskConversation.objects.filter(pk=task.pk).update(messages_closed=True)
    return task


def send(task: CodingTask, text: str) -> TaskMessage:
    """A message to an unfinished task: kept as a message (a finished one makes a follow-up)."""
    sent = task_message_send(task=task, text=text)
    assert isinstance(sent, TaskMessage)
    return sent


def finish(task: CodingTask, status: str = TaskStatus.SUCCEEDED) -> None:
    assert task_finish(task_id=task.pk, result=RunResult(status, "")) is not None


def follow_ups_of(task: CodingTask) -> list[CodingTask]:
    return list(CodingTask.objects.filter(parent=task).order_by("pk"))


def page_of(client, task: CodingTask) -> str:
    return html.unescape(client.get(reverse("tasks:detail", args=[task.pk])).content.decode())


@pytest.mark.django_db(transaction=True)  # the box closes its connection, as in its thread
def test_a_late_message_becomes_one_follow_up_when_the_task_ends(user, user_client):
    task = task_make(user, status=TaskStatus.RUNNING, prompt="Fix the parser")
    box = TaskMessageBox(task_id=task.pk)
    assert box.fetch(after=0, final=True).closed  # the agent answered everything
    response = user_client.post(
        reverse("tasks:message", args=[task.pk]), {"text": "and the empty case"}, follow=True
    )
    assert "Message kept" in html.unescape(response.content.decode())
    message = TaskMessage.objects.get(task=task)
    assert message.late
    # The ending run never gets it, and a container cannot claim it had it.
    assert box.fetch(after=0, final=False).messages == []
    box.fetch(after=5, final=True)
    assert TaskMessage.objects.get(pk=message.pk).delivered_at is None
    page = page_of(user_client, task)
    assert "it becomes a follow-up when the task finishes" in page

    finish(task)
    [follow_up] = follow_ups_of(task)
    assert (follow_up.prompt, follow_up.status) == ("and the empty case", TaskStatus.QUEUED)
    message.refresh_from_db()
    assert message.follow_up == follow_up
    page = page_of(user_client, task)
    link = f'<a href="{reverse("tasks:detail", args=[follow_up.pk])}">became follow-up #'
    assert link + f"{follow_up.pk}</a>" in page
    assert "Fix the parser" not in follow_up.prompt


def test_two_late_messages_make_one_follow_up_with_both_texts_in_order(user):
    task = ending(user)
    for text in ("first: the empty case", "second: and the docs 🙂"):
        assert send(task, text).late
    finish(task, TaskStatus.FAILED)  # continue works for any finished task
    [follow_up] = follow_ups_of(task)
    assert follow_up.prompt == "first: the empty case\n\nsecond: and the docs 🙂"
    assert set(TaskMessage.objects.values_list("follow_up", flat=True)) == {follow_up.pk}
    # Nothing is left to make a second one.
    assert late_messages_sweep() == 0
    finish_again = task_finish(task_id=task.pk, result=RunResult(TaskStatus.SUCCEEDED, ""))
    assert finish_again is None
    assert len(follow_ups_of(task)) == 1


def test_messages_before_the_close_are_not_part_of_the_follow_up(user):
    task = task_make(user, status=TaskStatus.RUNNING)
    early = send(task, "taken by the agent")
    assert not early.late
    TaskMessage.objects.filter(pk=early.pk).update(delivered_at=early.created_at)
    TaskConversation.objects.filter(pk=task.pk).update(messages_closed=True)
    task_message_send(task=task, text="too late for this run")
    finish(task)
    assert [f.prompt for f in follow_ups_of(task)] == ["too late for this run"]


def test_no_late_message_no_follow_up(user):
    task = ending(user)
    finish(task)
    assert follow_ups_of(task) == []


@pytest.mark.django_db(transaction=True)
def test_a_task_that_waits_delivers_its_late_messages_in_its_next_run(user):
    task = ending(user)
    task_message_send(task=task, text="kept through the wait")
    finish(task, TaskStatus.WAITING)  # a usage limit: the task's run has not ended
    assert follow_ups_of(task) == []
    # A message to the waiting task is for its next run, whatever the last one closed.
    waiting = CodingTask.objects.get(pk=task.pk)
    assert not send(waiting, "and while it waits").late
    CodingTask.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    conversation_inputs(task=CodingTask.objects.get(pk=task.pk))  # the next run starts
    got = TaskMessageBox(task_id=task.pk).fetch(after=0, final=False)
    assert got.messages == [(1, "kept through the wait"), (2, "and while it waits")]
    assert not got.closed
    TaskMessageBox(task_id=task.pk).fetch(after=2, final=True)
    finish(task)
    assert follow_ups_of(task) == []  # delivered: nothing to follow up
    assert TaskMessage.objects.filter(delivered_at__isnull=False).count() == 2


def test_a_cancelled_task_keeps_its_late_message_for_continue_by_hand(user, user_client):
    task = ending(user)
    task_message_send(task=task, text="also the docs")
    finish(task, TaskStatus.CANCELLED)
    assert follow_ups_of(task) == []
    assert late_messages_sweep() == 0  # the cancel is the owner's later word
    page = page_of(user_client, task)
    assert "not delivered: the task was cancelled" in page
    continue_box = page[page.index('id="task-continue"') :]
    assert "\nalso the docs</textarea>" in continue_box


def test_a_full_task_limit_leaves_the_message_not_delivered_with_the_reason(
    user, user_client, settings
):
    settings.AGENT_MAX_RUNNING_TASKS_PER_USER = 0
    settings.AGENT_MAX_QUEUED_TASKS_PER_USER = 1
    task_make(user)  # queued: the one allowed
    task = ending(user)
    task_message_send(task=task, text="the empty case too")
    finish(task)
    assert follow_ups_of(task) == []
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED  # the task's end is saved all the same
    message = TaskMessage.objects.get(task=task)
    assert message.not_delivered.startswith("Not queued: you have 0 tasks running and 1 task")
    page = page_of(user_client, task)
    assert f"not delivered: {message.not_delivered}" in page
    assert "\nthe empty case too</textarea>" in page[page.index('id="task-continue"') :]
    # Not tried again by itself, even once a slot is free: its owner decides.
    settings.AGENT_MAX_QUEUED_TASKS_PER_USER = 5
    queue_sweep()
    assert follow_ups_of(task) == []
    user_client.post(reverse("tasks:continue", args=[task.pk]), {"prompt": "the empty case too"})
    assert [f.prompt for f in follow_ups_of(task)] == ["the empty case too"]


def test_the_sweep_makes_the_follow_up_that_an_interrupted_end_did_not(user):
    task = ending(user)
    task_message_send(task=task, text="one more thing")
    # Its end was saved, but what was to make the follow-up failed (the row as it is left).
    CodingTask.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCEEDED)
    assert queue_sweep().others == 1
    assert [f.prompt for f in follow_ups_of(task)] == ["one more thing"]
    assert queue_sweep().others == 0


def test_a_database_error_in_the_follow_up_leaves_the_end_saved_for_the_sweep(user, monkeypatch):
    task = ending(user)
    send(task, "still wanted")

    def broken(**_):
        with connection.cursor() as cursor:  # fails as the database does (a poisoned query)
            cursor.execute("SELECT no_such_column FROM tasks_codingtask")

    monkeypatch.setattr(follow_ups, "task_continue", broken)
    finish(task)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED
    assert follow_ups_of(task) == []
    monkeypatch.undo()
    assert late_messages_sweep() == 1
    assert [f.prompt for f in follow_ups_of(task)] == ["still wanted"]


def test_a_takeover_that_finds_no_container_fails_the_task_and_makes_the_follow_up(user):
    # Its worker died as a resumed run started, before a container: the messages that came
    # late to the run before (it had answered everything) are what is left of it.
    task = ending(user, runner="elsewhere:1")
    send(task, "kept from the run before")
    report = RecoveryReport()
    unused = docker.DockerClient(
        base_url="unix:///nonexistent.sock", version="1.41"
    )  # no container to remove
    recovery._take_over(task, None, "the worker running it stopped", unused, report)
    task.refresh_from_db()
    assert (task.status, report.tasks_failed) == (TaskStatus.FAILED, 1)
    assert [f.prompt for f in follow_ups_of(task)] == ["kept from the run before"]


def test_a_message_to_the_finished_task_still_starts_its_own_follow_up(user, user_client):
    task = ending(user)
    task_message_send(task=task, text="late")
    finish(task)
    response = user_client.post(reverse("tasks:message", args=[task.pk]), {"text": "after"})
    first, second = follow_ups_of(task)
    assert (first.prompt, second.prompt) == ("late", "after")
    assert response.url == reverse("tasks:detail", args=[second.pk])
    notice = page_of(user_client, second)
    assert f"Task {task.pk} had finished: your message started task {second.pk}" in notice


def test_another_users_task_takes_no_message(user, other_user, client):
    task = ending(user)
    client.force_login(other_user)
    response = client.post(reverse("tasks:message", args=[task.pk]), {"text": "mine"})
    assert response.status_code == 404
    assert not TaskMessage.objects.exists()


# --- races: each runs its parties in threads, on connections of their own ------------------------


def _together(*calls) -> list[object]:
    """Run the calls at once, each in a thread with its own database connection."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001  # the test reads it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_finishers_racing_make_one_follow_up(user):
    for _ in range(5):
        task = ending(user)
        task_message_send(task=task, text="both texts")
        task_message_send(task=task, text="in order")

        def finisher(task_id=task.pk):
            return task_finish(task_id=task_id, result=RunResult(TaskStatus.SUCCEEDED, ""))

        # The runner's end, a second end (a takeover's) and the sweep, all at once.
        results = _together(finisher, finisher, late_messages_sweep)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert [f.prompt for f in follow_ups_of(task)] == ["both texts\n\nin order"]
        CodingTask.objects.filter(owner=user).delete()


@pytest.mark.django_db(transaction=True)
def test_sweeps_racing_over_an_interrupted_end_make_one_follow_up(user):
    for _ in range(5):
        task = ending(user)
        task_message_send(task=task, text="only once")
        # The end was saved, what was to make the follow-up was not: two hosts' sweeps and a
        # direct call find it at once.
        CodingTask.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCEEDED)

        def direct(task_id=task.pk):
            return task_late_messages_follow_up(task_id=task_id)

        results = _together(late_messages_sweep, late_messages_sweep, direct)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert [f.prompt for f in follow_ups_of(task)] == ["only once"]
        CodingTask.objects.filter(owner=user).delete()


@pytest.mark.django_db(transaction=True)
def test_a_message_racing_the_end_is_in_one_follow_up_and_never_lost(user):
    for _ in range(6):
        task = ending(user)

        def send(task_id=task.pk):
            return task_message_send(task=CodingTask.objects.get(pk=task_id), text="racing")

        def end(task_id=task.pk):
            return task_finish(task_id=task_id, result=RunResult(TaskStatus.SUCCEEDED, ""))

        results = _together(send, end)
        assert not [r for r in results if isinstance(r, Exception)], results
        # Late (then made the follow-up by the end) or after the end (a follow-up at once).
        assert [f.prompt for f in follow_ups_of(task)] == ["racing"]
        assert not TaskMessage.objects.filter(task=task, followed_up_at=None).exists()
        CodingTask.objects.filter(owner=user).delete()
