"""Running one task: choose auth, start the task's gateway, build the container's inputs
(tasks.run.inputs), run it, record what happened (tasks.run.outcome) and what the gateway saw,
its log kept by tasks.run.log.TaskLog. task_run is the one entry point.

The gateway (gateway.runtime.TaskGateway) runs in this process, in its own thread, for exactly
as long as the task: its socket, in a folder of its own under AGENT_GATEWAY_SOCKET_ROOT, is
mounted into this task's container only, and the folder is removed when the task ends.

If this process dies, its gateway dies with it while the container runs on. task_follow (called
by tasks.recovery in the supervising process) then takes over: a new gateway on the same socket
path, with the same placeholder and credential (recorded on the task row for this; never a
real token), and the container followed to its end as here.

An unreachable Docker engine does not fail the task: it waits (tasks.waits.engine).

Called by the background worker (tasks.background). It is the only writer of a running task's
log and result columns; the web side only ever sets `cancel_requested` or cancels queued tasks.
"""

import logging
import os
import secrets
import shutil
import socket
from pathlib import Path

import docker
from django.conf import settings
from django.utils import timezone

from accounts.selectors import agent_env_for_task, auth_method_for_user
from gateway.runtime import GatewayUsage, placeholder_new
from hosting.errors import HostingError
from oauth_tokens.models import OAuthCredential
from oauth_tokens.services import AuthUnavailable
from tasks.models import CodingTask, TaskStatus
from tasks.results import RunResult
from tasks.waits import limit_actions
from tasks.waits.engine import task_engine_reached, task_wait_for_engine
from tasks.waits.limit_actions import RunAuth

from .containers import (
    ContainerError,
    ContainerOutcome,
    ContainerSpec,
    EngineUnreachable,
    container_follow,
    container_labels,
    container_run,
    docker_client,
    engine_id,
)
from .gateway import (
    SocketRootUnsafe,
    auth_oauth_credential_id,
    gateway_socket_root,
    task_api_key,
    task_gateway_again,
    task_gateway_open,
    task_usage_record,
)
from .inputs import ContainerInputs, container_inputs
from .log import TaskLog
from .outcome import outcome_result, outcome_values, run_limit_of
from .workspace import Workspace, workspace_prepare, workspace_record, workspace_remove
from .worktree import tree_put

logger = logging.getLogger(__name__)


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
        _finish(task.pk, RunResult(TaskStatus.FAILED, f"The runner failed unexpectedly: {reason}"))
    finally:
        workspace_remove(task_id=task.pk)


def _run(task: CodingTask, log: TaskLog) -> None:
    # Re-check the owner may still run tasks: the account may have been disabled meanwhile.
    if not task.owner.is_active:
        _finish(
            task.pk, RunResult(TaskStatus.FAILED, "Your account is disabled; the task was not run.")
        )
        return
    # The engine first: while it is away the task waits, with no token refreshed for nothing.
    try:
        client = docker_client()
        engine = engine_id(client=client)
    except EngineUnreachable as exc:
        task_wait_for_engine(task_id=task.pk, reason=str(exc))
        return
    task_engine_reached(task_id=task.pk)
    CodingTask.objects.filter(pk=task.pk).update(engine_id=engine)
    try:
        # Valid now (the usual buffer): the gateway renews it while the task runs.
        auth = auth_method_for_user(user=task.owner, api_key_only=task.force_api_key)
        # A subscription known to be limited: wait from the start, or the user's API key.
        auth, waiting = limit_actions.limited_before_start(task=task, auth=auth)
    except AuthUnavailable as exc:
        log.note(str(exc))
        _finish(task.pk, RunResult(TaskStatus.FAILED, str(exc)))
        return
    CodingTask.objects.filter(pk=task.pk).update(
        auth_method=auth.method,
        auth_source=auth.source,
        auth_refreshed=auth.refreshed,
        auth_fallback=auth.fallback or task.force_api_key,
        auth_note=auth.reason,
        auth_credential_id=auth_oauth_credential_id(auth),
    )
    log.note(auth.reason)
    if waiting is not None:
        log.note(waiting.message)
        _finish(task.pk, waiting)
        return
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
        failed = RunResult(TaskStatus.FAILED, f"Could not clone the repository: {exc.message}")
        _finish(task.pk, failed)
        return
    log.note(
        f"Cloned {task.repo_url} (branch {workspace.branch}) at {workspace.start_commit[:12]} "
        "on the worker"
    )
    if should_cancel(task):  # cancelled while auth was chosen: no gateway, no container
        _finish(task.pk, RunResult(TaskStatus.CANCELLED, "Cancelled at your request."))
        return
    try:
        root = gateway_socket_root()
    except SocketRootUnsafe as exc:
        log.note(str(exc))
        _finish(task.pk, RunResult(TaskStatus.FAILED, str(exc)))
        return
    placeholder = placeholder_new()
    with task_gateway_open(task, root, auth, placeholder, log) as (gateway, socket_dir):
        inputs = container_inputs(
            task=task, auth=auth, agent_env=agent_env, placeholder=placeholder
        )
        log.secrets = inputs.secrets
        outcome = _run_container(task, log, inputs, socket_dir, client, workspace)
        # The container is gone: nothing more can come through the gateway.
        usage = gateway.stop()
        task_usage_record(task.pk, usage)
    if outcome is not None:
        log.finish()
        _record_outcome(
            task,
            outcome,
            log,
            usage,
            auth=RunAuth(auth.method, auth.source, auth_oauth_credential_id(auth)),
        )
        workspace_record(task=task, outcome=outcome, log=log)


def should_cancel(task: CodingTask) -> bool:
    return CodingTask.objects.filter(pk=task.pk, cancel_requested=True).exists()


def _run_container(
    task: CodingTask,
    log: TaskLog,
    inputs: ContainerInputs,
    socket_dir: Path,
    client: docker.DockerClient,
    workspace: Workspace,
) -> ContainerOutcome | None:
    """The container run to its end; None when it could not run (the task is then failed, or
    waits when the engine went away before the container existed)."""
    spec = ContainerSpec(
        image=settings.AGENT_IMAGE,
        env=inputs.env,
        files=inputs.files,
        labels=container_labels(task_id=task.pk),
        # Unique on the engine: installations sharing one engine number their tasks alike.
        name=f"claude-runner-task-{task.pk}-{secrets.token_hex(6)}",
        timeout_seconds=settings.AGENT_TIMEOUT_SECONDS,
        network_mode=settings.AGENT_NETWORK_MODE,
        mem_limit=settings.AGENT_MEMORY_LIMIT or None,
        nano_cpus=int(settings.AGENT_CPUS * 1e9) if settings.AGENT_CPUS else None,
        pids_limit=settings.AGENT_PIDS_LIMIT or None,
        volumes=inputs.volumes,
        gateway_dir=str(socket_dir),
        prepare=[lambda container: tree_put(container=container, src=workspace.path)],
    )

    def started(container_id: str) -> None:
        CodingTask.objects.filter(pk=task.pk).update(container_id=container_id)

    try:
        outcome = container_run(
            client=client,
            spec=spec,
            on_started=started,
            on_output=log.feed,
            should_cancel=lambda: should_cancel(task),
            max_output_bytes=max(settings.AGENT_DIFF_MAX_BYTES, settings.AGENT_BUNDLE_MAX_BYTES),
        )
    except EngineUnreachable as exc:
        log.note(str(exc))
        task_wait_for_engine(task_id=task.pk, reason=str(exc))
        return None
    except ContainerError as exc:
        log.note(str(exc))
        _finish(task.pk, RunResult(TaskStatus.FAILED, str(exc)))
        return None
    return outcome


def task_follow(*, task_id: int, container_id: str, reason: str) -> None:
    """Take over a running task whose worker died (tasks.recovery claims it first): put its
    gateway back on the same socket, follow the container to its end (an exited one is just
    read), and record the outcome as task_run would. Never raises: a failure fails the task."""
    task = CodingTask.objects.select_related("owner").get(pk=task_id)
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=settings.AGENT_LOG_MAX_BYTES)
    # The dead worker's own notes (how it authenticated, variables left out) stay; the
    # container's output is read again from its start below.
    for line in task.log.splitlines():
        if line.startswith("[runner] "):
            log.note(line.removeprefix("[runner] "))
    log.note(f"The task was taken over: {reason}. Following its container to the end.")
    gateway = None
    try:
        log.secrets = _follow_secrets(task)
        gateway = task_gateway_again(task, log)
        remaining = settings.AGENT_TIMEOUT_SECONDS
        if task.started_at:
            remaining -= (timezone.now() - task.started_at).total_seconds()
        outcome = container_follow(
            client=docker_client(),
            container_id=container_id,
            timeout_seconds=max(0.0, remaining),
            on_output=log.feed,
            should_cancel=lambda: should_cancel(task),
            max_output_bytes=max(settings.AGENT_DIFF_MAX_BYTES, settings.AGENT_BUNDLE_MAX_BYTES),
        )
        # Only what went through the new gateway: the first one's count died with it.
        usage = gateway.stop() if gateway is not None else GatewayUsage()
        task_usage_record(task.pk, usage)
        log.finish()
        auth = RunAuth(task.auth_method, task.auth_source, task.auth_credential_id)
        _record_outcome(task, outcome, log, usage, auth=auth)
        workspace_record(task=task, outcome=outcome, log=log)
    except Exception as exc:
        logger.exception("Taking over task %s failed", task_id)
        log.note(f"Could not follow the container: {log.redact(str(exc))}")
        message = (
            f"The task was interrupted: {reason}, and its container could not be "
            f"followed ({log.redact(str(exc))}). Submit it again."
        )
        _finish(task.pk, RunResult(TaskStatus.FAILED, message))
    finally:
        if gateway is not None:
            gateway.stop()
        if task.gateway_dir:
            shutil.rmtree(task.gateway_dir, ignore_errors=True)


def _follow_secrets(task: CodingTask) -> list[str]:
    """What to redact from a taken-over task's log: as for task_run (tasks.run.inputs)."""
    agent_env, _ = agent_env_for_task(user=task.owner)
    values = [task.gateway_placeholder, *agent_env.values()]
    if task.auth_credential_id is not None:
        credential = OAuthCredential.objects.filter(pk=task.auth_credential_id).first()
        if credential is not None:
            values += [credential.access_token, credential.refresh_token]
    else:
        values.append(task_api_key(task))
    return [v for v in values if v]


def _record_outcome(
    task: CodingTask,
    outcome: ContainerOutcome,
    log: TaskLog,
    usage: GatewayUsage,
    *,
    auth: RunAuth,
) -> None:
    # The stream first, then what the gateway saw of the same answers (tasks.waits.limits).
    limit = run_limit_of(
        log=log,
        result=outcome_result(outcome=outcome, log=log),
        now=timezone.now(),
        gateway_headers=usage.ratelimit_headers,
        gateway_status_429=usage.status_429,
    )
    result = outcome_values(outcome=outcome, log=log, limit=limit)
    result = limit_actions.limits_after_run(task=task, auth=auth, limit=limit, result=result)
    _finish(task.pk, result)


def _finish(task_id: int, result: RunResult) -> None:
    # Only a running task is finished here: recovery may have settled it already.
    waiting = result.status == TaskStatus.WAITING
    # The placeholder goes with the task's socket: nothing can use it any more.
    finished = CodingTask.objects.filter(pk=task_id, status=TaskStatus.RUNNING).update(
        status=result.status,
        error_message=result.message,
        finished_at=None if waiting else timezone.now(),
        gateway_placeholder="",
        **result.values,
    )
    logger.info("Task %s finished: %s", task_id, result.status)
    if finished:
        limit_actions.task_settled(task_id=task_id, status=result.status)
