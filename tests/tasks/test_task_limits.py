"""Per-user limits on running and waiting tasks: settings with defaults, an admin
override per user, checked when a task is submitted, under a lock so a burst cannot slip past."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import preferences_get
from tasks.models import CodingTask, TaskStatus, WaitReason
from tasks.queue import queue_sweep
from tasks.services import task_create, task_run_now_with_api_key
from tasks.validation import TaskInputError, TaskNotPossible
from tests.tasks.conftest import set_api_key

pytestmark = pytest.mark.django_db

URL = "https://github.com/a/b.git"


@pytest.fixture
def no_worker(settings):
    # Tasks stay queued: nothing runs them.
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    settings.AGENT_MAX_RUNNING_TASKS_PER_USER = 2
    settings.AGENT_MAX_QUEUED_TASKS_PER_USER = 3
    return settings


def submit(user) -> CodingTask:
    return task_create(owner=user, repo_url=URL, prompt="p")


def test_defaults_allow_free_running_slots_plus_the_waiting_limit(no_worker, user):
    # 2 may start at once and 3 may wait: the sixth is refused.
    for _ in range(5):
        submit(user)
    with pytest.raises(TaskInputError) as error:
        submit(user)
    assert error.value.field is None
    assert error.value.message == (
        "Not queued: you have 0 tasks running and 5 tasks waiting to start, and your limits are "
        "2 running at once and 3 waiting. Submit it again when one has finished, or cancel a "
        "waiting one."
    )
    assert CodingTask.objects.filter(owner=user).count() == 5


def test_running_tasks_take_the_running_slots(no_worker, user):
    for _ in range(2):
        CodingTask.objects.create(owner=user, repo_url=URL, prompt="p", status=TaskStatus.RUNNING)
    for _ in range(3):
        submit(user)
    with pytest.raises(TaskInputError, match="2 tasks running and 3 tasks waiting"):
        submit(user)


def test_finished_tasks_and_other_users_do_not_count(no_worker, user, other_user):
    for status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        CodingTask.objects.create(owner=user, repo_url=URL, prompt="p", status=status)
    for _ in range(5):
        submit(other_user)
    for _ in range(5):
        submit(user)


def test_an_admin_override_for_one_user_wins(no_worker, user, other_user):
    preferences = preferences_get(user=user)
    preferences.max_running_tasks, preferences.max_queued_tasks = 1, 0
    preferences.save()
    submit(user)
    with pytest.raises(TaskInputError, match="limits are 1 running at once and 0 waiting"):
        submit(user)
    for _ in range(5):  # the other user keeps the server's defaults
        submit(other_user)


def test_the_form_says_why_it_refused(no_worker, user, user_client):
    for _ in range(5):
        submit(user)
    response = user_client.post(
        reverse("tasks:list"), {"repo_url": URL, "branch": "", "prompt": "one more"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Not queued: you have 0 tasks running and 5 tasks waiting to start" in html
    assert CodingTask.objects.filter(owner=user).count() == 5


def test_the_admin_shows_and_edits_the_limits(no_worker, user, admin_client):
    preferences = preferences_get(user=user)
    url = reverse("admin:accounts_userpreferences_change", args=[preferences.pk])
    html = admin_client.get(url).content.decode()
    assert 'name="max_running_tasks"' in html
    assert 'name="max_queued_tasks"' in html
    response = admin_client.post(
        url, {"use_oauth": "", "max_running_tasks": "4", "max_queued_tasks": "1"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    preferences.refresh_from_db()
    assert (preferences.max_running_tasks, preferences.max_queued_tasks) == (4, 1)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_submissions_cannot_slip_past_the_limit(no_worker, user):
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(
        ("file:memorydb", ":memory:")
    ):
        pytest.skip("threads need a file database (the suite's SQLite is in memory)")
    preferences_get(user=user)
    errors: list[Exception] = []
    start = threading.Barrier(12)

    def one() -> None:
        try:
            start.wait()
            submit(user)
        except TaskInputError as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=one) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert CodingTask.objects.filter(owner=user).count() == 5
    assert len(errors) == 7


def _all_stopped_by_a_limit(user, now) -> None:
    CodingTask.objects.filter(owner=user).update(
        status=TaskStatus.WAITING,
        waiting_since=now - timedelta(hours=1),
        requeue_at=now - timedelta(seconds=1),
        wait_reason=WaitReason.USAGE_LIMIT,
        error_message="Stopped by the Claude 5-hour limit.",
    )


def test_tasks_waiting_for_a_reset_count_and_come_back_in_turn(no_worker, user):
    """20 submissions against 2 running + 5 waiting: the 7 accepted ones, stopped by a usage
    limit, still hold their places; after the reset they come back two at a time."""
    no_worker.AGENT_MAX_QUEUED_TASKS_PER_USER = 5
    now = timezone.now()
    accepted = [submit(user) for _ in range(7)]
    _all_stopped_by_a_limit(user, now)
    refused = 0
    for _ in range(13):
        with pytest.raises(TaskInputError, match="0 tasks running and 7 tasks waiting"):
            submit(user)
        refused += 1
    assert refused == 13
    assert CodingTask.objects.filter(owner=user).count() == 7

    # The reset came: only as many as may run at once go back to the queue.
    swept = queue_sweep(now=now)
    assert len(swept.resumed) == 2
    statuses = Counter(CodingTask.objects.filter(owner=user).values_list("status", flat=True))
    assert statuses == {TaskStatus.QUEUED: 2, TaskStatus.WAITING: 5}
    waiting = CodingTask.objects.filter(owner=user, status=TaskStatus.WAITING)
    for task in waiting:
        assert task.requeue_at is not None
        assert task.requeue_at > now  # its turn, not failed
        assert "after its turn" in task.error_message
        assert "you may run 2 at once" in task.error_message

    # Nothing frees a slot: a later sweep moves none; then two finish and two more come back.
    assert queue_sweep(now=now + timedelta(seconds=31)).resumed == []
    CodingTask.objects.filter(owner=user, status=TaskStatus.QUEUED).update(
        status=TaskStatus.SUCCEEDED
    )
    assert len(queue_sweep(now=now + timedelta(seconds=62)).resumed) == 2
    assert {t.pk for t in accepted} == set(
        CodingTask.objects.filter(owner=user).values_list("pk", flat=True)
    )


def _page_says(user_client, name: str, task: CodingTask) -> str:
    answer = user_client.post(reverse(name, args=[task.pk]), follow=True)
    return " ".join(str(message) for message in answer.context["messages"])


def test_running_now_with_the_api_key_also_waits_for_a_free_slot(no_worker, user, user_client):
    set_api_key(user, "sk-ant-api03-" + "k" * 40)
    for _ in range(2):
        CodingTask.objects.create(owner=user, repo_url=URL, prompt="p", status=TaskStatus.RUNNING)
    waiting = CodingTask.objects.create(
        owner=user, repo_url=URL, prompt="p", status=TaskStatus.WAITING
    )
    said = _page_says(user_client, "tasks:run_now_with_api_key", waiting)
    assert "running slots are all taken" in said
    assert "starts on your API key as soon as one is free" in said
    waiting.refresh_from_db()
    assert waiting.status == TaskStatus.WAITING
    assert waiting.force_api_key  # on the key when its turn comes
    CodingTask.objects.filter(owner=user, status=TaskStatus.RUNNING).update(
        status=TaskStatus.FAILED
    )
    assert task_run_now_with_api_key(task=waiting).queued
    waiting.refresh_from_db()
    assert waiting.status == TaskStatus.QUEUED


def test_running_now_with_the_api_key_refused_changes_nothing(no_worker, user, user_client):
    waiting = CodingTask.objects.create(
        owner=user, repo_url=URL, prompt="p", status=TaskStatus.WAITING
    )
    said = _page_says(user_client, "tasks:run_now_with_api_key", waiting)
    assert "no API key saved" in said
    set_api_key(user, "sk-ant-api03-" + "k" * 40)
    finished = CodingTask.objects.create(
        owner=user, repo_url=URL, prompt="p", status=TaskStatus.SUCCEEDED
    )
    assert "not waiting any more" in _page_says(user_client, "tasks:run_now_with_api_key", finished)
    with pytest.raises(TaskNotPossible):
        task_run_now_with_api_key(task=finished)
    assert not CodingTask.objects.filter(force_api_key=True).exists()
    assert CodingTask.objects.get(pk=waiting.pk).status == TaskStatus.WAITING
