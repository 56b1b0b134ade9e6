"""Waiting for the container engine: a task that finds the Docker engine unreachable (stopped for
an upgrade, restarting) goes back to the queue and is tried again with a growing delay, for at
most AGENT_ENGINE_MAX_WAIT in all; only then does it fail, with the engine's message.

It stays "queued" while it waits (nothing of it has run; cancelling works as for any queued
task); `engine_wait_since` says it is waiting, and the page says for what. The way back to the
queue is task_requeue_later: a deferred run (django.tasks `run_after`) where the backend
supports it, else the periodic sweep (tasks_requeue_due). It is the same shape as the usage-limit
wait (tasks.waits.usage_limit on branch `limits`), and is meant to join it when both are on main.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from tasks.models import CodingTask, TaskStatus

logger = logging.getLogger(__name__)


def engine_retry_delay(*, waited: timedelta) -> timedelta:
    """The next try's delay: the first after AGENT_ENGINE_RETRY_SECONDS, then about as long as
    already waited (so the delay doubles), never more than AGENT_ENGINE_RETRY_MAX_SECONDS."""
    first = timedelta(seconds=settings.AGENT_ENGINE_RETRY_SECONDS)
    most = timedelta(seconds=settings.AGENT_ENGINE_RETRY_MAX_SECONDS)
    return min(max(first, waited), most)


def task_wait_for_engine(*, task_id: int, reason: str, now: datetime | None = None) -> str:
    """A task just claimed (running) that could not reach the engine: queued again for a later
    try, or failed once AGENT_ENGINE_MAX_WAIT has passed. Returns the status it now has."""
    now = now or timezone.now()
    task = CodingTask.objects.filter(pk=task_id, status=TaskStatus.RUNNING).first()
    if task is None:
        return ""
    since = task.engine_wait_since or now
    waited = now - since
    max_wait = timedelta(seconds=settings.AGENT_ENGINE_MAX_WAIT)
    if waited >= max_wait:
        minutes = settings.AGENT_ENGINE_MAX_WAIT / 60
        CodingTask.objects.filter(pk=task_id, status=TaskStatus.RUNNING).update(
            status=TaskStatus.FAILED,
            finished_at=now,
            engine_retry_at=None,
            gateway_placeholder="",
            error_message=(
                f"{reason} The task waited {minutes:g} minutes for it "
                "(AGENT_ENGINE_MAX_WAIT) and was not run; submit it again when the engine is back."
            ),
        )
        logger.warning("Task %s failed: no Docker engine for %s", task_id, waited)
        return TaskStatus.FAILED
    retry_at = now + min(engine_retry_delay(waited=waited), max_wait - waited)
    moved = CodingTask.objects.filter(pk=task_id, status=TaskStatus.RUNNING).update(
        status=TaskStatus.QUEUED,
        started_at=None,
        runner="",
        engine_wait_since=since,
        engine_retry_at=retry_at,
        error_message=(
            f"Waiting for the container engine: {reason} Trying again at "
            f"{retry_at:%H:%M:%S} UTC, for at most {settings.AGENT_ENGINE_MAX_WAIT / 60:g} "
            "minutes in all."
        ),
    )
    if moved:
        logger.warning("Task %s waits for the Docker engine until %s", task_id, retry_at)
        task_requeue_later(task_id=task_id, run_after=retry_at, reason="container engine")
    return TaskStatus.QUEUED if moved else ""


def task_engine_reached(*, task_id: int) -> None:
    """The engine answered: the task is no longer waiting for it."""
    CodingTask.objects.filter(pk=task_id).exclude(engine_wait_since=None).update(
        engine_wait_since=None, engine_retry_at=None, error_message=""
    )


def task_requeue_later(*, task_id: int, run_after: datetime, reason: str) -> None:
    """Run a queued task again at run_after: deferred by the task backend when it can, else by
    the periodic sweep (tasks_requeue_due). Running a queued task twice is harmless (only one
    claim succeeds), so the sweep may overlap a deferred run."""
    from tasks.background import run_coding_task, task_defer

    if not task_defer(job=run_coding_task, task_id=task_id, run_after=run_after):
        logger.info("Task %s (%s) left to the sweep: the backend cannot defer", task_id, reason)


def tasks_requeue_due(*, now: datetime | None = None) -> list[int]:
    """The sweep, for task backends that cannot defer: waiting tasks whose time has come."""
    from tasks.background import run_coding_task

    if run_coding_task.get_backend().supports_defer:
        return []
    now = now or timezone.now()
    due = CodingTask.objects.filter(status=TaskStatus.QUEUED, engine_retry_at__lte=now)
    task_ids = list(due.values_list("pk", flat=True))
    for task_id in task_ids:
        CodingTask.objects.filter(pk=task_id).update(engine_retry_at=None)
        run_coding_task.enqueue(task_id)
    return task_ids
