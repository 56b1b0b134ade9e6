"""Background entry points (django.tasks): load nothing, decide nothing, call the runner."""

from django.tasks import task

from .runner import task_run


@task()
def run_coding_task(task_id: int) -> None:
    task_run(task_id=task_id)
