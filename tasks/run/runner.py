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

Called by the queue's entry point (tasks.queue), to which it returns what the task came to (a
RunResult; tasks.run.finish writes it): the runner never enqueues. It is the only writer of a
running task's log and result columns; the web side only ever sets `cancel_requested` or cancels
queued tasks.
"""

import logging
import os
import secrets
import shutil
import socket
from dataclasses import dataclass, replace
from pathlib import Path

import docker
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import agent_env_for_task, auth_method_for_user
from gateway.runtime import GatewayUsage, placeholder_new
from hosting.errors import HostingError
from oauth_tokens.models import OAuthCredential
from oauth_tokens.services import AuthResolution, AuthUnavailable
from tasks.models import CodingTask, TaskRuntime, TaskStatus
from tasks.results import RunResult
from tasks.waits import limit_actions
from tasks.waits.engine import engine_wait_plan, task_engine_reached
from tasks.waits.limit_actions import RunAuth
from tasks.waits.limits import RunLimit, task_limit_choose

from .agent_user import AgentUserUnavailable, agent_uid_for_task
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
from .conversation import conversation_record, transcript_max_bytes
from .finish import task_finish
from .gateway import (
    SocketRootUnsafe,
    auth_oauth_credential_id,
    gateway_socket_root,
    task_api_key,
    task_gateway_again,
    task_gateway_open,
    task_usage_record,
)
from .home import home_put
from .inputs import ContainerInputs, container_inputs
from .log import TaskLog
from .outcome import outcome_result, outcome_values, run_limit_of
from .setup import Prepared, SetupReady, agent_egress_for_task, setup_phase
from .workspace import (
    CLONE_FAILED,
    WorkspaceClone,
    WorkspaceUnusable,
    workspace_bundle_keep,
    workspace_clone,
    workspace_finished,
    workspace_pull_request_open,
    workspace_remove,
)
from .worktree import tree_put

logger = logging.getLogger(__name__)


def runner_ident() -> str:
    """Which worker process runs a task: lets recovery tell a dead worker's task from a live one."""
    return f"{socket.gethostname()}:{os.getpid()}"


def task_run(*, task_id: int) -> RunResult | None:
    """Run a queued task to its end; what it came to, or None when nothing ran (it was not
    queued, or not due yet) or someone else settled it meanwhile. Safe to call twice: only a
    queued task that is due is started."""
    now = timezone.now()
    # Who runs it is recorded with the claim, so recovery can judge it even if this worker
    # dies before a container exists. A task waiting for the engine is due at its next try.
    claimed = (
        CodingTask.objects.filter(pk=task_id, status=TaskStatus.QUEUED)
        .filter(Q(requeue_at__isnull=True) | Q(requeue_at__lte=now))
        .update(status=TaskStatus.RUNNING, started_at=now, runner=runner_ident(), requeue_at=None)
    )
    if not claimed:
        logger.info("Task %s is not queued (cancelled, already run, or not due); skipping", task_id)
        return None
    task = CodingTask.objects.select_related("owner").get(pk=task_id)
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=settings.AGENT_LOG_MAX_BYTES)
    try:
        return _run(task, log)
    except Exception as exc:
        logger.exception("Task %s crashed in the runner", task_id)
        reason = log.redact(str(exc))
        failed = RunResult(TaskStatus.FAILED, f"The runner failed unexpectedly: {reason}")
        return task_finish(task_id=task.pk, result=failed, redact=log.redact)
    finally:
        workspace_remove(task_id=task.pk)


@dataclass(frozen=True)
class _Ready:
    """Everything a container needs that can be had before its gateway starts."""

    client: docker.DockerClient
    auth: AuthResolution
    agent_env: dict[str, str]
    workspace: WorkspaceClone  # a follow-up's earlier commits may still be going in
    socket_root: Path
    agent_uid: int  # the host uid the container runs as (tasks.run.agent_user)
    prepared: Prepared | None = None  # what the environment's setup made, if the task has one


def _run(task: CodingTask, log: TaskLog) -> RunResult | None:
    ready = _prepare(task, log)
    if isinstance(ready, RunResult):
        return task_finish(task_id=task.pk, result=ready, redact=log.redact)
    auth = ready.auth
    # The environment's setup, before any model request (tasks.run.setup).
    try:
        prepared = setup_phase(
            task=task,
            ready=SetupReady(
                ready.client,
                lambda: workspace_finished(task=task, clone=ready.workspace, log=log),
                ready.socket_root,
                ready.agent_uid,
            ),
            log=log,
        )
    except WorkspaceUnusable as exc:
        log.note(str(exc))
        prepared = RunResult(TaskStatus.FAILED, str(exc))
    if isinstance(prepared, RunResult):
        return task_finish(task_id=task.pk, result=prepared, redact=log.redact)
    egress = prepared.agent_egress if prepared else None
    placeholder = placeholder_new()
    opened = task_gateway_open(
        task, ready.socket_root, auth, placeholder, log, ready.agent_uid, egress
    )
    with opened as (gateway, folder):
        inputs = container_inputs(
            task=task, auth=auth, agent_env=ready.agent_env, placeholder=placeholder
        )
        log.secrets = [*inputs.secrets, *(prepared.secrets if prepared else [])]
        ran = _run_container(task, log, inputs, folder, replace(ready, prepared=prepared))
        # The container is gone: nothing more can come through the gateway.
        usage = gateway.stop()
        task_usage_record(task.pk, usage)
    run_auth = RunAuth(auth.method, auth.source, auth_oauth_credential_id(auth))
    # What the gateway saw reaches the credential first: no file the agent wrote can stop it.
    seen = limit_actions.credential_facts_record(task=task, auth=run_auth, usage=usage)
    if isinstance(ran, RunResult):
        return task_finish(task_id=task.pk, result=ran, redact=log.redact)
    log.finish()
    # What a follow-up starts from is kept before the end is written, when one can be asked for.
    conversation_record(task=task, outcome=ran, log=log)
    workspace = ready.workspace.finished()  # waited for before the tree went in
    kept = workspace_bundle_keep(task=task, outcome=ran, log=log, workspace=workspace)
    result = _record_outcome(task, ran, log, seen, auth=run_auth)
    workspace_pull_request_open(task=task, kept=kept)
    return result


def _output_max_bytes() -> int:
    """Each output file is read up to the largest any may be (each is checked against its own)."""
    return max(
        settings.AGENT_DIFF_MAX_BYTES, settings.AGENT_BUNDLE_MAX_BYTES, transcript_max_bytes()
    )


def _prepare(task: CodingTask, log: TaskLog) -> _Ready | RunResult:
    """The engine, the credential, the saved variables and the clone; or what the task comes to
    when one of them is not to be had."""
    # Re-check the owner may still run tasks: the account may have been disabled meanwhile.
    if not task.owner.is_active:
        return RunResult(TaskStatus.FAILED, "Your account is disabled; the task was not run.")
    # The engine first: while it is away the task waits, with no token refreshed for nothing.
    try:
        client = docker_client()
        engine = engine_id(client=client)
    except EngineUnreachable as exc:
        return engine_wait_plan(task_id=task.pk, reason=str(exc), now=timezone.now())
    task_engine_reached(task_id=task.pk)
    CodingTask.objects.filter(pk=task.pk).update(engine_id=engine)
    auth = _auth_choose(task, log)
    if isinstance(auth, RunResult):
        return auth
    agent_env, left_out = agent_env_for_task(user=task.owner)
    for problem in left_out:
        log.note(
            f"Saved environment variable {problem.label} left out: {problem.message} "
            "Replace it on the settings page."
        )
    try:  # the repository, cloned here: the container needs no network (or token) for git
        clone = workspace_clone(task=task)
    except HostingError as exc:
        log.note(exc.message)
        return RunResult(TaskStatus.FAILED, f"{CLONE_FAILED}: {exc.message}")
    if not clone.reads_earlier_commits:  # nothing more goes in: said at once
        workspace_finished(task=task, clone=clone, log=log)
    if should_cancel(task):  # cancelled while auth was chosen: no gateway, no container
        return RunResult(TaskStatus.CANCELLED, "Cancelled at your request.")
    try:
        root = gateway_socket_root()
        agent_uid = agent_uid_for_task(task_id=task.pk)
    except (SocketRootUnsafe, AgentUserUnavailable) as exc:
        log.note(str(exc))
        return RunResult(TaskStatus.FAILED, str(exc))
    return _Ready(client, auth, agent_env, clone, root, agent_uid)


def _auth_choose(task: CodingTask, log: TaskLog) -> AuthResolution | RunResult:
    """The credential the task runs on, recorded on the task; or what it comes to without one
    (failed), or while its subscription is known to be limited (waiting)."""
    try:
        # Valid now (the usual buffer): the gateway renews it while the task runs.
        auth = auth_method_for_user(user=task.owner, api_key_only=task.force_api_key)
        # A subscription known to be limited: wait from the start, or the user's API key.
        auth, waiting = limit_actions.limited_before_start(task=task, auth=auth)
    except AuthUnavailable as exc:
        log.note(str(exc))
        return RunResult(TaskStatus.FAILED, str(exc))
    CodingTask.objects.filter(pk=task.pk).update(
        auth_method=auth.method,
        auth_source=auth.source,
        auth_refreshed=auth.refreshed,
        auth_fallback=auth.fallback or task.force_api_key,
        auth_note=auth.reason,
    )
    TaskRuntime.objects.filter(pk=task.pk).update(credential_id=auth_oauth_credential_id(auth))
    log.note(auth.reason)
    if waiting is not None:
        log.note(waiting.message)
        return waiting
    return auth


def should_cancel(task: CodingTask) -> bool:
    return CodingTask.objects.filter(pk=task.pk, cancel_requested=True).exists()


def _run_container(
    task: CodingTask, log: TaskLog, inputs: ContainerInputs, socket_dir: Path, ready: _Ready
) -> ContainerOutcome | RunResult:
    """The container run to its end; or what the task comes to when it could not run (failed,
    or waiting when the engine went away before the container existed)."""
    prepared = ready.prepared
    if prepared is None:
        image, env = settings.AGENT_IMAGE, inputs.env
        put = [
            lambda container: tree_put(
                container=container,
                src=workspace_finished(task=task, clone=ready.workspace, log=log).path,
                uid=ready.agent_uid,
            )
        ]
    else:  # the environment's variables first: the runner's own win
        image, env = prepared.image, {**prepared.variables, **inputs.env}
        put = [
            lambda container: home_put(
                container=container, src=prepared.home_tar, uid=ready.agent_uid
            )
        ]
    spec = ContainerSpec(
        image=image,
        env=env,
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
        uid=ready.agent_uid,
        prepare=put,
    )

    def started(container_id: str) -> None:
        TaskRuntime.objects.filter(pk=task.pk).update(container_id=container_id)

    try:
        return container_run(
            client=ready.client,
            spec=spec,
            on_started=started,
            on_output=log.feed,
            should_cancel=lambda: should_cancel(task),
            max_output_bytes=_output_max_bytes(),
        )
    except EngineUnreachable as exc:
        log.note(str(exc))
        return engine_wait_plan(task_id=task.pk, reason=str(exc), now=timezone.now())
    except ContainerError as exc:
        log.note(str(exc))
        return RunResult(TaskStatus.FAILED, str(exc))


def task_follow(*, task_id: int, container_id: str, reason: str) -> RunResult | None:
    """Take over a running task whose worker died (tasks.recovery claims it first): put its
    gateway back on the same socket, follow the container to its end (an exited one is just
    read), and record the outcome as task_run would; what it came to, as task_run says. Never
    raises: a failure fails the task."""
    task = CodingTask.objects.select_related("owner", "runtime").get(pk=task_id)
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
        gateway = task_gateway_again(task, log, agent_egress_for_task(task_id=task.pk))
        remaining = settings.AGENT_TIMEOUT_SECONDS
        if task.started_at:
            remaining -= (timezone.now() - task.started_at).total_seconds()
        outcome = container_follow(
            client=docker_client(),
            container_id=container_id,
            timeout_seconds=max(0.0, remaining),
            on_output=log.feed,
            should_cancel=lambda: should_cancel(task),
            max_output_bytes=_output_max_bytes(),
        )
        # Only what went through the new gateway: the first one's count died with it.
        usage = gateway.stop() if gateway is not None else GatewayUsage()
        task_usage_record(task.pk, usage)
        auth = RunAuth(task.auth_method, task.auth_source, task.runtime.credential_id)
        # What the gateway saw reaches the credential first: no file the agent wrote can stop it.
        seen = limit_actions.credential_facts_record(task=task, auth=auth, usage=usage)
        log.finish()
        conversation_record(task=task, outcome=outcome, log=log)
        # The dead worker's clone is gone: the bundle is checked without it.
        kept = workspace_bundle_keep(task=task, outcome=outcome, log=log, workspace=None)
        result = _record_outcome(task, outcome, log, seen, auth=auth)
        workspace_pull_request_open(task=task, kept=kept)
    except Exception as exc:
        logger.exception("Taking over task %s failed", task_id)
        log.note(f"Could not follow the container: {log.redact(str(exc))}")
        message = (
            f"The task was interrupted: {reason}, and its container could not be "
            f"followed ({log.redact(str(exc))}). Submit it again."
        )
        failed = RunResult(TaskStatus.FAILED, message)
        result = task_finish(task_id=task.pk, result=failed, redact=log.redact)
    finally:
        if gateway is not None:
            gateway.stop()
        if task.runtime.gateway_dir:
            shutil.rmtree(task.runtime.gateway_dir, ignore_errors=True)
    return result


def _follow_secrets(task: CodingTask) -> list[str]:
    """What to redact from a taken-over task's log: as for task_run (tasks.run.inputs)."""
    agent_env, _ = agent_env_for_task(user=task.owner)
    values = [task.runtime.gateway_placeholder, *agent_env.values()]
    if task.runtime.credential_id is not None:
        credential = OAuthCredential.objects.filter(pk=task.runtime.credential_id).first()
        if credential is not None:
            values += [credential.access_token, credential.refresh_token]
    else:
        values.append(task_api_key(task))
    return [v for v in values if v]


def _record_outcome(
    task: CodingTask,
    outcome: ContainerOutcome,
    log: TaskLog,
    seen: RunLimit,
    *,
    auth: RunAuth,
) -> RunResult | None:
    # Two witnesses (tasks.waits.limits): the agent's own account shapes this task only; what
    # the gateway saw (seen, already on the credential) decides the task when it saw something.
    now = timezone.now()
    claim = run_limit_of(log=log, result=outcome_result(outcome=outcome, log=log), now=now)
    limit = task_limit_choose(claim=claim, seen=seen)
    if unseen := limit_actions.claim_unseen_words(limit):
        log.note(f"{unseen[:1].upper()}{unseen[1:]}: this task alone is affected.")
    result = outcome_values(outcome=outcome, log=log, limit=limit)
    result = limit_actions.limits_after_run(task=task, auth=auth, limit=limit, result=result)
    return task_finish(task_id=task.pk, result=result, redact=log.redact)
