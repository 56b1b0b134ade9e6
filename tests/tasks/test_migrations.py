"""The tasks app's data migrations carry existing rows over, both ways: queued jobs keep running,
waiting tasks keep waiting, and every column of a task lands where it lives now."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.deploy]

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


# Every column a task had before it was split, each with a value of its own.
SPLIT_COLUMNS = {
    "api_requests": 3,
    "input_tokens": 1200,
    "output_tokens": 345,
    "cache_creation_input_tokens": 7,
    "cache_read_input_tokens": 890,
    "api_status_429": 1,
    "api_status_529": 2,
    "ratelimit_headers": {"anthropic-ratelimit-unified-status": "allowed_warning"},
    "cost_usd": Decimal("0.123456"),
    "num_turns": 4,
    "duration_ms": 5678,
    "limit_verdict": "limited",
    "limit_window": "five_hour",
    "limit_detail": "You've hit your limit",
    "limited_until": datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    "limit_waits": 2,
    "limit_waited_seconds": 3600,
    "auth_rejected": True,
    "base_branch": "main",
    "start_commit": "a" * 40,
    "result_bundle": b"# v2 git bundle\n\x00\xff binary",
    "pr_state": "opened",
    "pr_branch": "claude-runner/1-tidy",
    "pr_commit": "b" * 40,
    "pr_number": 17,
    "pr_url": "https://github.com/a/b/pull/17",
    "pr_error": "an earlier refusal",
    "container_id": "c" * 64,
    "gateway_dir": "/tmp/crgw/t1-abc",
    "gateway_placeholder": "claude-runner-placeholder-xyz",
    "auth_credential_id": 42,
}
# Where each lands: (one-to-one row, its column).
SPLIT_TO = {
    **{
        old: ("usage", new)
        for old, new in (
            ("api_requests", "requests"),
            ("input_tokens", "input_tokens"),
            ("output_tokens", "output_tokens"),
            ("cache_creation_input_tokens", "cache_creation_input_tokens"),
            ("cache_read_input_tokens", "cache_read_input_tokens"),
            ("api_status_429", "status_429"),
            ("api_status_529", "status_529"),
            ("ratelimit_headers", "ratelimit_headers"),
            ("cost_usd", "cost_usd"),
            ("num_turns", "num_turns"),
            ("duration_ms", "duration_ms"),
        )
    },
    **{
        old: ("limit", new)
        for old, new in (
            ("limit_verdict", "verdict"),
            ("limit_window", "window"),
            ("limit_detail", "detail"),
            ("limited_until", "limited_until"),
            ("limit_waits", "waits"),
            ("limit_waited_seconds", "waited_seconds"),
            ("auth_rejected", "auth_rejected"),
        )
    },
    **{
        old: ("pull_request", new)
        for old, new in (
            ("base_branch", "base_branch"),
            ("start_commit", "start_commit"),
            ("result_bundle", "bundle"),
            ("pr_state", "state"),
            ("pr_branch", "branch"),
            ("pr_commit", "commit"),
            ("pr_number", "number"),
            ("pr_url", "url"),
            ("pr_error", "error"),
        )
    },
    **{
        old: ("runtime", new)
        for old, new in (
            ("container_id", "container_id"),
            ("gateway_dir", "gateway_dir"),
            ("gateway_placeholder", "gateway_placeholder"),
            ("auth_credential_id", "credential_id"),
        )
    },
}
BEFORE_SPLIT = ("tasks", "0007_one_requeue_column_pair")
AFTER_SPLIT = ("tasks", "0008_task_usage_limit_pull_request_runtime")


def _plain(value: object) -> object:
    return bytes(value) if isinstance(value, memoryview) else value


@pytest.mark.usefixtures("migrations_undone")
def test_every_column_of_a_task_moves_to_its_own_row_and_back() -> None:
    assert set(SPLIT_TO) == set(SPLIT_COLUMNS)
    old = _migrate(BEFORE_SPLIT)
    tasks = _rows(old, "tasks", "CodingTask")
    owner = _owner(old)
    common = {"owner": owner, "repo_url": "https://github.com/a/b.git", "prompt": "p"}
    full = tasks.create(status="succeeded", auth_method="oauth", auth_source="user", **common)
    tasks.filter(pk=full.pk).update(**SPLIT_COLUMNS)
    bare = tasks.create(status="queued", **common)  # a task with nothing of that set yet

    new = _migrate(AFTER_SPLIT)
    task = (
        _rows(new, "tasks", "CodingTask")
        .select_related("usage", "limit", "pull_request", "runtime")
        .get(pk=full.pk)
    )
    for old_name, (row, new_name) in SPLIT_TO.items():
        moved = _plain(getattr(getattr(task, row), new_name))
        assert moved == SPLIT_COLUMNS[old_name], (old_name, row, new_name)
    assert (task.auth_method, task.auth_source) == ("oauth", "user")
    empty = _rows(new, "tasks", "CodingTask").get(pk=bare.pk)
    assert (empty.usage.requests, empty.limit.waits, empty.pull_request.state) == (None, 0, "")
    assert empty.runtime.container_id == ""
    columns = {f.name for f in new.get_model("tasks", "CodingTask")._meta.concrete_fields}
    assert not columns & set(SPLIT_COLUMNS)
    assert len(columns) < 35

    back = _migrate(BEFORE_SPLIT)
    restored = _rows(back, "tasks", "CodingTask").values(*SPLIT_COLUMNS).get(pk=full.pk)
    assert {name: _plain(value) for name, value in restored.items()} == SPLIT_COLUMNS
