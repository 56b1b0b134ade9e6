"""The one home of "run this later": the background entry points (django.tasks), enqueueing and
deferring a job, and the one sweep.

The runner and the waits never enqueue: they return a RunResult, whose `requeue_at` says when the
task is to run again, and task_after_run schedules it. A task comes back by two ways, so both task
engines work and a lost job loses nothing: a deferred job (django.tasks `run_after`, where the
backend supports it) and queue_sweep, which `manage.py run_worker` and every Celery worker run
every AGENT_RECOVERY_SWEEP_SECONDS. Each move back to the queue is one conditional UPDATE, so it
happens once whoever gets there first; a second job for the same task finds nothing to do.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.tasks import Task, task
from django.utils import timezone

from tasks.models import CodingTask, TaskStatus
from tasks.pull_requests.create import task_pull_request_create
from tasks.results import RunResult
from tasks.run.runner import task_run
from tasks.signals import queue_swept
from tasks.waits.usage_limit import task_resume

logger = logging.getLogger(__name__)


@task()
def run_coding_task(task_id: int) -> None:
    """Run a queued task, or a waiting one whose time has come, and schedule what it asks for."""
    task_resume(task_id=task_id)  # a waiting task whose reset came: queued again first
    task_after_run(task_id=task_id, result=task_run(task_id=task_id))


@task()
def open_task_pull_request(task_id: int) -> None:
    task_pull_request_create(task_id=task_id)


def job_enqueue(job: Task[..., Any], *args: Any) -> None:
    """Enqueue job(*args) once the current transaction commits: a worker never picks up a row it
    cannot see yet."""
    transaction.on_commit(partial(job.enqueue, *args))


def job_defer(job: Task[..., Any], *args: Any, run_after: datetime) -> bool:
    """Enqueue job(*args) to run at run_after, once the current transaction commits, where the
    task backend can defer; False where it cannot (the sweep then puts it back when it is due)."""
    if not job.get_backend().supports_defer:
        return False
    transaction.on_commit(partial(job.using(run_after=run_after).enqueue, *args))
    return True


def task_enqueue(*, task_id: int) -> None:
    job_enqueue(run_coding_task, task_id)


def pull_request_enqueue(*, task_id: int) -> None:
    job_enqueue(open_task_pull_request, task_id)


def task_after_run(*, task_id: int, result: RunResult | None) -> None:
    """Schedule what a run (or a takeover) asked for: nothing, or the task back in the queue at
    result.requeue_at."""
    if result is None or result.requeue_at is None:
        return
    if result.requeue_at <= timezone.now():
        # Due already (the user's API key instead of a wait): queued again at once.
        if task_resume(task_id=task_id):
            task_enqueue(task_id=task_id)
        return
    if not job_defer(run_coding_task, task_id, run_after=result.requeue_at):
        logger.info("Task %s left to the sweep: the task backend cannot defer", task_id)


@dataclass(frozen=True)
class SweepReport:
    resumed: list[int]  # waiting tasks whose reset came
    queued: list[int]  # every task put back in the queue (the resumed ones too)
    others: int  # jobs other apps put back (queue_swept's receivers: notification deliveries)


def queue_sweep(*, now: datetime | None = None) -> SweepReport:
    """Put back in the queue whatever is due and not taken yet: a waiting task whose reset came,
    a queued task whose time came (a new one whose job is lost, one waiting for the engine), and
    (through queue_swept) other apps' due jobs."""
    now = now or timezone.now()
    due = CodingTask.objects.filter(requeue_at__lte=now)
    waiting = due.filter(status=TaskStatus.WAITING).values_list("pk", flat=True)
    resumed = [pk for pk in waiting if task_resume(task_id=pk, now=now)]
    queued = [
        pk
        for pk, at in due.filter(status=TaskStatus.QUEUED).values_list("pk", "requeue_at")
        # Taken once (cleared): a job already in the queue for it runs it as well as this one
        # would, and whichever comes second finds nothing to do.
        if CodingTask.objects.filter(pk=pk, status=TaskStatus.QUEUED, requeue_at=at).update(
            requeue_at=None
        )
    ]
    for pk in queued:
        task_enqueue(task_id=pk)
    # A receiver that fails is logged by send_robust and leaves the rest of the sweep alone.
    answers = queue_swept.send_robust(sender=CodingTask, now=now)
    others = sum(answer for _, answer in answers if isinstance(answer, int))
    return SweepReport(resumed=resumed, queued=queued, others=others)
