"""GET /api/tasks/{id}?wait=N answers as soon as the task changes, or after N seconds."""

import threading
import time

import pytest
from django.utils import timezone

from tasks.follow_ups import task_message_send
from tasks.models import CodingTask, PullRequestState, TaskMessage, TaskPullRequest, TaskStatus
from tests.tasks.conftest import task_make

pytestmark = pytest.mark.django_db(transaction=True)


def _later(seconds: float, change) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        change()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_waiting_client_wakes_when_the_task_changes(client, user, bearer, settings):
    settings.API_WAIT_POLL_SECONDS = 0.05
    task = task_make(user)
    client.get(f"/api/tasks/{task.pk}", headers=bearer)  # first request's imports out of the way
    change = _later(
        0.8,
        lambda: CodingTask.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING),
    )
    start = time.monotonic()
    answer = client.get(f"/api/tasks/{task.pk}?wait=10", headers=bearer)
    took = time.monotonic() - start
    change.join()
    assert answer.status_code == 200
    assert answer.json()["status"] == "running"
    assert answer["X-Task-Changed"] == "true"
    assert 0.7 < took < 4


def test_a_pull_request_opening_wakes_it_too(client, user, bearer, settings):
    settings.API_WAIT_POLL_SECONDS = 0.05
    task = task_make(user, status=TaskStatus.SUCCEEDED)
    client.get(f"/api/tasks/{task.pk}", headers=bearer)
    change = _later(
        0.8,
        lambda: TaskPullRequest.objects.filter(pk=task.pk).update(state=PullRequestState.OPENED),
    )
    answer = client.get(f"/api/tasks/{task.pk}?wait=10", headers=bearer)
    change.join()
    assert answer.json()["pull_request"]["state"] == "opened"


def test_a_message_taken_by_the_agent_wakes_it(client, user, bearer, settings):
    """A script that sent a message waits to see it delivered, while the task keeps running."""
    settings.API_WAIT_POLL_SECONDS = 0.05
    task = task_make(user, status=TaskStatus.RUNNING)
    message = task_message_send(task=task, text="also fix the docs")
    before = client.get(f"/api/tasks/{task.pk}", headers=bearer).json()
    assert [m["state"] for m in before["messages"]] == ["waiting"]
    change = _later(
        0.8,
        lambda: TaskMessage.objects.filter(pk=message.pk).update(delivered_at=timezone.now()),
    )
    start = time.monotonic()
    answer = client.get(f"/api/tasks/{task.pk}?wait=10", headers=bearer)
    took = time.monotonic() - start
    change.join()
    assert answer["X-Task-Changed"] == "true"
    assert answer.json()["status"] == "running"
    assert [m["state"] for m in answer.json()["messages"]] == ["delivered"]
    assert 0.7 < took < 4


def test_a_late_message_becoming_a_follow_up_wakes_it(client, user, bearer, settings):
    """A message sent as the task finished becomes a follow-up after its end (the sweep makes
    it): a client waiting on the ended task sees that."""
    settings.API_WAIT_POLL_SECONDS = 0.05
    task = task_make(user, status=TaskStatus.SUCCEEDED)
    message = TaskMessage.objects.create(task=task, seq=1, text="and the changelog", late=True)
    follow_up = task_make(user, status=TaskStatus.QUEUED, parent=task)
    change = _later(
        0.8,
        lambda: TaskMessage.objects.filter(pk=message.pk).update(
            follow_up=follow_up, followed_up_at=timezone.now()
        ),
    )
    answer = client.get(f"/api/tasks/{task.pk}?wait=10", headers=bearer)
    change.join()
    assert answer["X-Task-Changed"] == "true"
    sent = answer.json()["messages"]
    assert [(m["state"], m["follow_up_id"]) for m in sent] == [("follow_up", follow_up.pk)]


def test_without_a_change_it_answers_after_the_wait(client, user, bearer):
    task = task_make(user)
    start = time.monotonic()
    answer = client.get(f"/api/tasks/{task.pk}?wait=1", headers=bearer)
    took = time.monotonic() - start
    assert answer.status_code == 200
    assert answer["X-Task-Changed"] == "false"
    assert 0.9 < took < 3


def test_without_wait_it_answers_at_once(client, user, bearer):
    task = task_make(user)
    start = time.monotonic()
    answer = client.get(f"/api/tasks/{task.pk}", headers=bearer)
    assert time.monotonic() - start < 1
    assert "X-Task-Changed" not in answer
