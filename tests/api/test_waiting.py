"""GET /api/tasks/{id}?wait=N answers as soon as the task changes, or after N seconds."""

import threading
import time

import pytest

from tasks.models import CodingTask, PullRequestState, TaskPullRequest, TaskStatus
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
