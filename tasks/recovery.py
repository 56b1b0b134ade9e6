"""Taking over what a dead worker left behind on this host's Docker engine: its running tasks
(followed to their end by tasks.run.runner.task_follow) and its orphaned containers."""

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta

import docker
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from docker.models.containers import Container

from tasks.models import FINISHED_STATUSES, CodingTask, TaskRuntime, TaskStatus
from tasks.queue import task_after_run
from tasks.run.containers import (
    PHASE_LABEL,
    container_id_of,
    container_stop_remove,
    containers_ours,
    docker_client,
    engine_id,
)
from tasks.run.runner import runner_ident, task_follow
from tasks.signals import task_ending

logger = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    tasks_failed: int = 0
    containers_removed: int = 0
    tasks_followed: int = 0  # taken over: container followed (or read) to its end
    # The threads following them (daemon threads; a test or a caller may join them).
    followers: list[threading.Thread] = field(default_factory=list)


RUNNING_STATES = ("running", "restarting", "paused")


def tasks_recover() -> RecoveryReport:
    """Settle what a dead worker left behind on this host's Docker engine; run by a worker on
    start, by run_worker when a worker dies and periodically (also in Celery's worker).

    A running task whose worker is dead (on this host: its process is gone; from another host
    on this engine: its container is no longer running, or ran far past the time limit) is
    taken over by this process (tasks.run.runner.task_follow, in a thread of its own): its
    container, still running or already exited, is followed and read to its end, so the task
    ends as it would have, diff and all. Only a task with no container left is marked failed.
    A container of this installation whose task has finished (or no longer exists) is removed.
    Containers of other installations or without our labels are never touched; tasks on other
    engines are not judged; a task whose worker is alive on this host is left to that worker.
    """
    report = RecoveryReport()
    client = docker_client()
    engine = engine_id(client=client)
    ours = {c.id: c for c in containers_ours(client=client)}
    # A setup container is not the task's agent: a task whose worker died in setup has none.
    by_task = {
        c.labels.get("claude-runner.task-id", ""): c
        for c in ours.values()
        if c.labels.get(PHASE_LABEL) != "setup"
    }
    here = socket.gethostname()
    candidates = (
        CodingTask.objects.filter(status=TaskStatus.RUNNING)
        .filter(Q(engine_id=engine) | Q(engine_id="", runner__startswith=f"{here}:"))
        .select_related("runtime")
    )
    for task in candidates:
        # By label too: a worker may die between starting the container and recording its id.
        container = ours.get(task.runtime.container_id) or by_task.get(str(task.pk))
        reason = _orphaned_why(task, container, here)
        # Claimed with one conditional update, so two processes never both take it over.
        if reason and CodingTask.objects.filter(
            pk=task.pk, status=TaskStatus.RUNNING, runner=task.runner
        ).update(runner=runner_ident()):
            _take_over(task, container, reason, client, report)
    live_ids = set(
        CodingTask.objects.exclude(status__in=FINISHED_STATUSES).values_list("pk", flat=True)
    )
    for container in ours.values():
        task_id = container.labels.get("claude-runner.task-id", "")
        if task_id.isdigit() and int(task_id) in live_ids:
            continue
        if container_stop_remove(client=client, container_id=container_id_of(container)):
            report.containers_removed += 1
            logger.warning("Removed orphaned container %s (task %s)", container.short_id, task_id)
    return report


def _orphaned_why(task: CodingTask, container: Container | None, here: str) -> str:
    """Why a running task has no live worker ("" when it has one, or may have)."""
    state = container.status if container is not None else ""
    host, _, pid = task.runner.rpartition(":")
    if host == here:
        # A live process on this host owns it.
        return "" if _pid_alive(pid) else "the worker running it stopped"
    if state not in RUNNING_STATES:
        return "the worker running it stopped (its container is not running)"
    stale_after = timedelta(seconds=settings.AGENT_TIMEOUT_SECONDS + 300)
    if task.started_at and timezone.now() - task.started_at > stale_after:
        return "it ran far past the time limit without a worker watching it"
    return ""


def _take_over(
    task: CodingTask,
    container: Container | None,
    reason: str,
    client: docker.DockerClient,
    report: RecoveryReport,
) -> None:
    """A task claimed from its dead worker: its container followed to its end in a thread of
    its own, or, when nothing of it ran, the task failed saying why."""
    if container is not None and container.status != "created":
        follower = threading.Thread(
            target=_follow,
            kwargs={"task_id": task.pk, "container_id": container_id_of(container)},
            args=(reason,),
            name=f"follow-task-{task.pk}",
            daemon=True,
        )
        follower.start()
        report.followers.append(follower)
        report.tasks_followed += 1
        logger.warning("Taking over task %s: %s", task.pk, reason)
        return
    if container is not None:  # created, never started: nothing ran
        container_stop_remove(client=client, container_id=container_id_of(container))
        report.containers_removed += 1
    with transaction.atomic():  # its end and what the end makes of it, together
        settled = CodingTask.objects.filter(pk=task.pk, status=TaskStatus.RUNNING).update(
            status=TaskStatus.FAILED,
            finished_at=timezone.now(),
            error_message=f"The task was interrupted: {reason}, before its container ran. "
            "Submit it again.",
        )
        TaskRuntime.objects.filter(pk=task.pk).update(gateway_placeholder="")
        if settled:
            task_ending.send_robust(sender=CodingTask, task_id=task.pk, status=TaskStatus.FAILED)
    report.tasks_failed += settled
    logger.warning("Recovered task %s as failed: %s", task.pk, reason)


def _follow(reason: str, *, task_id: int, container_id: str) -> None:
    try:
        result = task_follow(task_id=task_id, container_id=container_id, reason=reason)
        task_after_run(task_id=task_id, result=result)  # e.g. it ended waiting for a reset
    finally:
        connection.close()  # this thread's own database connection


def _pid_alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
