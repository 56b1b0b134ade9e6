"""The tasks app's data migrations carry existing rows over, both ways: queued jobs keep running,
waiting tasks keep waiting, and every column of a task lands where it lives now."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

JOBS_APP = ("django_tasks_database", "0021_conditional_partial_index_ordering")


def _migrate(*targets: tuple[str, str]) -> Apps:
    """The database at these migrations; the models as they were there."""
    executor = MigrationExecutor(connection)
    executor.migrate(list(targets))
    executor.loader.build_graph()
    return executor.loader.project_state(list(targets)).apps


@pytest.fixture
def migrations_undone() -> Iterator[None]:
    """Whatever a test migrates to, the database is at the latest migrations afterwards."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _rows(apps: Apps, label: str, name: str) -> Any:
    """A historical model's manager: its columns are those of its time, not of the code's."""
    return apps.get_model(label, name).objects


def _owner(apps: Apps) -> object:
    return _rows(apps, "auth", "User").create(username="migrated")


@pytest.mark.usefixtures("migrations_undone")
def test_queued_jobs_are_renamed_to_the_queue_module_and_back() -> None:
    old = _migrate(("tasks", "0005_pull_requests_and_continuations"), JOBS_APP)
    jobs = _rows(old, "django_tasks_database", "DBTaskResult")
    for path, status in (
        ("tasks.background.run_coding_task", "READY"),
        ("tasks.background.resume_waiting_task", "READY"),
        ("tasks.background.open_task_pull_request", "READY"),
        ("tasks.background.run_coding_task", "SUCCESSFUL"),  # history stays as it was
        ("notifications.background.send_notification", "READY"),
    ):
        jobs.create(
            task_path=path,
            status=status,
            args_kwargs={"args": [1], "kwargs": {}},
            backend_name="default",
            run_after=timezone.now(),
        )

    new = _migrate(("tasks", "0006_queued_jobs_to_tasks_queue"))
    paths = _rows(new, "django_tasks_database", "DBTaskResult")
    assert sorted(paths.values_list("task_path", "status")) == [
        ("notifications.background.send_notification", "READY"),
        ("tasks.background.run_coding_task", "SUCCESSFUL"),
        ("tasks.queue.open_task_pull_request", "READY"),
        ("tasks.queue.run_coding_task", "READY"),
        ("tasks.queue.run_coding_task", "READY"),  # a resume is a run now
    ]

    back = _migrate(("tasks", "0005_pull_requests_and_continuations"), JOBS_APP)
    paths = _rows(back, "django_tasks_database", "DBTaskResult")
    assert set(paths.filter(status="READY").values_list("task_path", flat=True)) == {
        "notifications.background.send_notification",
        "tasks.background.open_task_pull_request",
        "tasks.background.run_coding_task",
    }


@pytest.mark.usefixtures("migrations_undone")
def test_waiting_tasks_keep_waiting_on_one_column_pair_and_back() -> None:
    now = timezone.now().replace(microsecond=0)
    reset, retry, since = now + timedelta(hours=2), now + timedelta(seconds=20), now
    old = _migrate(("tasks", "0006_queued_jobs_to_tasks_queue"))
    tasks = _rows(old, "tasks", "CodingTask")
    owner = _owner(old)
    common = {"owner": owner, "repo_url": "https://github.com/a/b.git", "prompt": "p"}
    limited = tasks.create(status="waiting", resume_after=reset, waiting_since=since, **common)
    engine = tasks.create(status="queued", engine_wait_since=since, engine_retry_at=retry, **common)
    queued = tasks.create(status="queued", **common)
    done = tasks.create(status="succeeded", **common)

    new = _migrate(("tasks", "0007_one_requeue_column_pair"))
    rows = {
        row["pk"]: row
        for row in _rows(new, "tasks", "CodingTask").values(
            "pk", "status", "requeue_at", "waiting_since", "wait_reason"
        )
    }
    assert rows[limited.pk] | {"pk": 0} == {
        "pk": 0,
        "status": "waiting",
        "requeue_at": reset,
        "waiting_since": since,
        "wait_reason": "usage_limit",
    }
    assert rows[engine.pk] | {"pk": 0} == {
        "pk": 0,
        "status": "queued",
        "requeue_at": retry,
        "waiting_since": since,
        "wait_reason": "engine",
    }
    assert rows[queued.pk]["requeue_at"] is not None  # due: swept back should its job be lost
    assert rows[queued.pk]["wait_reason"] == ""
    assert (rows[done.pk]["requeue_at"], rows[done.pk]["wait_reason"]) == (None, "")

    back = _migrate(("tasks", "0006_queued_jobs_to_tasks_queue"))
    tasks = _rows(back, "tasks", "CodingTask")
    assert tasks.values_list("resume_after", "waiting_since").get(pk=limited.pk) == (reset, since)
    assert tasks.values_list("engine_wait_since", "engine_retry_at", "waiting_since").get(
        pk=engine.pk
    ) == (since, retry, None)
