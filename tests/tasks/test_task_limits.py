"""Per-user limits on running and waiting tasks: settings with defaults, an admin
override per user, checked when a task is submitted, under a lock so a burst cannot slip past."""

import threading

import pytest
from django.db import close_old_connections, connection
from django.urls import reverse

from accounts.selectors import preferences_get
from tasks.models import CodingTask, TaskStatus
from tasks.services import task_create
from tasks.validation import TaskInputError

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
