"""Background entry points (django.tasks): load nothing, decide nothing, call the runner."""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.tasks import Task, task

from tasks.pull_requests.create import task_pull_request_create
from tasks.run.runner import task_run
from tasks.waits.usage_limit import task_resume


@task()
def run_coding_task(task_id: int) -> None:
    task_run(task_id=task_id)


@task()
def resume_waiting_task(task_id: int) -> None:
    """Scheduled for just after a usage limit resets (run_after)."""
    if task_resume(task_id=task_id):
        task_run(task_id=task_id)


@task()
def open_task_pull_request(task_id: int) -> None:
    task_pull_request_create(task_id=task_id)


def task_defer(*, job: Task[Any, Any], task_id: int, run_after: datetime) -> bool:
    """Enqueue job(task_id) to run at run_after, once the current transaction commits, where
    the task backend can defer; False where it cannot (a periodic sweep then picks it up). The
    one way a task is put back for later: a usage-limit reset, an engine coming back."""
    if not job.get_backend().supports_defer:
        return False
    transaction.on_commit(lambda: job.using(run_after=run_after).enqueue(task_id))
    return True
