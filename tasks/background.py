"""Background entry points (django.tasks): load nothing, decide nothing, call the runner."""

from django.tasks import task

from .pull_requests import task_pull_request_create
from .runner import task_run
from .waiting import task_resume


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
