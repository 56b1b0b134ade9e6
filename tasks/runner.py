"""Running one task: choose auth, build the container's inputs (tasks.inputs), run it, record
what happened (tasks.outcome), its log kept by tasks.task_log.TaskLog. task_run is the one entry
point.

Called by the background worker (tasks.background). It is the only writer of a running task's
log and result columns; the web side only ever sets `cancel_requested` or cancels queued tasks.
"""

import logging
import os
import socket
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.selectors import agent_env_for_task, auth_method_for_user
from hosting.errors import HostingError
from oauth_tokens.services import (
    AuthResolution,
    AuthUnavailable,
    credential_rotation_save,
)

from .containers import (
    ContainerError,
    ContainerOutcome,
    ContainerSpec,
    container_labels,
    container_run,
    docker_client,
    engine_id,
)
from .inputs import container_inputs
from .models import CodingTask, TaskStatus
from .outcome import outcome_values
from .task_log import TaskLog
from .workspace import workspace_prepare, workspace_record, workspace_remove
from .worktree import tree_put

logger = logging.getLogger("tasks.runner")


def runner_ident() -> str:
    """Which worker process runs a task: lets recovery tell a dead worker's task from a live one."""
    return f"{socket.gethostname()}:{os.getpid()}"


def task_run(*, task_id: int) -> None:
    """Run a queued task to its end. Safe to call twice: only a queued task is started."""
    started = timezone.now()
    # Who runs it is recorded with the claim, so recovery can judge it even if this worker
    # dies before a container exists.
    claimed = CodingTask.objects.filter(pk=task_id, status=TaskStatus.QUEUED).update(
        status=TaskStatus.RUNNING, started_at=started, runner=runner_ident()
    )
    if not claimed:
        logger.info("Task %s is not queued any more (cancelled or already run); skipping", task_id)
        return
    task = CodingTask.objects.select_related("owner").get(pk=task_id)
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=settings.AGENT_LOG_MAX_BYTES)
    try:
        _run(task, log)
    except Exception as exc:
        logger.exception("Task %s crashed in the runner", task_id)
        reason = log.redact(str(exc))
        _finish(task.pk, TaskStatus.FAILED, error=f"The runner failed unexpectedly: {reason}")
    finally:
        workspace_remove(task_id=task.pk)


def _run(task: CodingTask, log: TaskLog) -> None:
    # Re-check the owner may still run tasks: the account may have been disabled meanwhile.
    if not task.owner.is_active:
        _finish(task.pk, TaskStatus.FAILED, error="Your account is disabled; the task was not run.")
        return
    try:
        # Valid for the whole run: the container has no refresh token to renew it with.
        auth = auth_method_for_user(
            user=task.owner,
            buffer_seconds=settings.AGENT_TIMEOUT_SECONDS + settings.CLAUDE_OAUTH_REFRESH_BUFFER,
        )
    except AuthUnavailable as exc:
        log.note(str(exc))
        _finish(task.pk, TaskStatus.FAILED, error=str(exc))
        return
    CodingTask.objects.filter(pk=task.pk).update(
        auth_method=auth.method,
        auth_source=auth.source,
        auth_refreshed=auth.refreshed,
        auth_fallback=auth.fallback,
        auth_note=auth.reason,
    )
    log.note(auth.reason)
    agent_env, left_out = agent_env_for_task(user=task.owner)
    for problem in left_out:
        log.note(
            f"Saved environment variable {problem.label} left out: {problem.message} "
            "Replace it on the settings page."
        )
    try:  # the repository, cloned here: the container needs no network (or token) for git
        workspace = workspace_prepare(task=task)
    except HostingError as exc:
        log.note(exc.message)
        _finish(task.pk, TaskStatus.FAILED, error=f"Could not clone the repository: {exc.message}")
        return
    log.note(
        f"Cloned {task.repo_url} (branch {workspace.branch}) at {workspace.start_commit[:12]} "
        "on the worker"
    )
    inputs = container_inputs(task=task, auth=auth, agent_env=agent_env)
    log.secrets = [s for s in inputs.secrets if s]

    client = docker_client()
    spec = ContainerSpec(
        image=settings.AGENT_IMAGE,
        env=inputs.env,
        files=inputs.files,
        labels=container_labels(task_id=task.pk),
        name=f"claude-runner-task-{task.pk}-{int(time.time())}",
        timeout_seconds=settings.AGENT_TIMEOUT_SECONDS,
        network_mode=settings.AGENT_NETWORK_MODE,
        mem_limit=settings.AGENT_MEMORY_LIMIT or None,
        nano_cpus=int(settings.AGENT_CPUS * 1e9) if settings.AGENT_CPUS else None,
        volumes=inputs.volumes,
        read_back=inputs.read_back,
        prepare=[lambda container: tree_put(container=container, src=workspace.path)],
    )
    engine = engine_id(client=client)
    CodingTask.objects.filter(pk=task.pk).update(engine_id=engine)

    def started(container_id: str) -> None:
        CodingTask.objects.filter(pk=task.pk).update(container_id=container_id)

    def should_cancel() -> bool:
        return CodingTask.objects.filter(pk=task.pk, cancel_requested=True).exists()

    if should_cancel():  # cancelled while auth was chosen: no container at all
        _finish(task.pk, TaskStatus.CANCELLED, error="Cancelled at your request.")
        return

    try:
        outcome = container_run(
            client=client,
            spec=spec,
            on_started=started,
            on_output=log.feed,
            should_cancel=should_cancel,
            max_output_bytes=max(settings.AGENT_DIFF_MAX_BYTES, settings.AGENT_BUNDLE_MAX_BYTES),
        )
    except ContainerError as exc:
        log.note(str(exc))
        _finish(task.pk, TaskStatus.FAILED, error=str(exc))
        return
    log.finish()
    _record_outcome(task, outcome, log)
    workspace_record(task=task, outcome=outcome, log=log)
    if outcome.read_back and auth.oauth is not None:
        _rotation_save(auth, outcome.read_back)


def _record_outcome(task: CodingTask, outcome: ContainerOutcome, log: TaskLog) -> None:
    status, error, values = outcome_values(outcome=outcome, log=log)
    _finish(task.pk, status, error=error, **values)


def _finish(task_id: int, status: str, *, error: str = "", **values: Any) -> None:
    # Only a running task is finished here: recovery may have settled it already.
    CodingTask.objects.filter(pk=task_id, status=TaskStatus.RUNNING).update(
        status=status, error_message=error, finished_at=timezone.now(), **values
    )
    logger.info("Task %s finished: %s", task_id, status)


def _rotation_save(auth: AuthResolution, read_back: dict[str, bytes]) -> None:
    data = next(iter(read_back.values()), b"")
    if auth.oauth is not None and data:
        credential_rotation_save(
            credential_id=auth.oauth.credential_id,
            given_refresh_token=auth.oauth.refresh_token,
            file_content=data,
        )
