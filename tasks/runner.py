"""Running one task: choose auth, start the task's gateway, build the container's inputs
(tasks.inputs), run it, record what happened (tasks.outcome) and what the gateway saw, its log
kept by tasks.task_log.TaskLog. task_run is the one entry point.

The gateway (gateway.runtime.TaskGateway) runs in this process, in its own thread, for exactly
as long as the task: its socket, in a folder of its own under AGENT_GATEWAY_SOCKET_ROOT, is
mounted into this task's container only, and the folder is removed when the task ends.

If this process dies, its gateway dies with it while the container runs on. task_follow (called
by tasks.recovery in the supervising process) then takes over: a new gateway on the same socket
path, with the same placeholder and credential (recorded on the task row for this; never a
real token), and the container followed to its end as here.

An unreachable Docker engine does not fail the task: it waits (tasks.engine_wait).

Called by the background worker (tasks.background). It is the only writer of a running task's
log and result columns; the web side only ever sets `cancel_requested` or cancels queued tasks.
"""

import contextlib
import logging
import os
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
from django.conf import settings
from django.utils import timezone

from accounts.selectors import agent_env_for_task, auth_method_for_user, preferences_get
from gateway.credentials import api_key_provider, oauth_provider
from gateway.runtime import GatewayUsage, TaskGateway, UpstreamAuth, placeholder_new
from hosting.errors import HostingError
from oauth_tokens.models import OAuthCredential
from oauth_tokens.services import AuthMethod, AuthResolution, AuthUnavailable

from . import limit_actions
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
from .engine_wait import task_engine_reached, task_wait_for_engine
from .inputs import ContainerInputs, container_inputs
from .limit_actions import RunAuth
from .models import CodingTask, TaskStatus
from .outcome import outcome_result, outcome_values, run_limit_of
from .task_log import TaskLog
from .workspace import Workspace, workspace_prepare, workspace_record, workspace_remove
from .worktree import tree_put

logger = logging.getLogger("tasks.runner")

GATEWAY_SOCKET_NAME = "gateway.sock"


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
        _finish(task.pk, TaskStatus.FAILED, error=str(exc))
        return
    CodingTask.objects.filter(pk=task.pk).update(
        auth_method=auth.method,
        auth_source=auth.source,
        auth_refreshed=auth.refreshed,
        auth_fallback=auth.fallback or task.force_api_key,
        auth_note=auth.reason,
        auth_credential_id=_oauth_credential_id(auth),
    )
    log.note(auth.reason)
    if waiting is not None:
        status, error, values = waiting
        log.note(error)
        _finish(task.pk, status, error=error, **values)
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
        _finish(task.pk, TaskStatus.FAILED, error=f"Could not clone the repository: {exc.message}")
        return
    log.note(
        f"Cloned {task.repo_url} (branch {workspace.branch}) at {workspace.start_commit[:12]} "
        "on the worker"
    )
    if should_cancel(task):  # cancelled while auth was chosen: no gateway, no container
        _finish(task.pk, TaskStatus.CANCELLED, error="Cancelled at your request.")
        return
    try:
        root = _socket_root()
    except SocketRootUnsafe as exc:
        log.note(str(exc))
        _finish(task.pk, TaskStatus.FAILED, error=str(exc))
        return
    placeholder = placeholder_new()
    with _task_gateway(task, root, auth, placeholder, log) as (gateway, socket_dir):
        inputs = container_inputs(
            task=task, auth=auth, agent_env=agent_env, placeholder=placeholder
        )
        log.secrets = inputs.secrets
        outcome = _run_container(task, log, inputs, socket_dir, client, workspace)
        # The container is gone: nothing more can come through the gateway.
        usage = gateway.stop()
        _usage_record(task.pk, usage)
    if outcome is not None:
        log.finish()
        _record_outcome(
            task,
            outcome,
            log,
            usage,
            auth=RunAuth(auth.method, auth.source, _oauth_credential_id(auth)),
        )
        workspace_record(task=task, outcome=outcome, log=log)


class SocketRootUnsafe(Exception):
    """AGENT_GATEWAY_SOCKET_ROOT is not a folder only the worker can change."""


def _socket_root() -> Path:
    """The folder of the tasks' socket folders, created if missing. Refused unless it is a real
    folder (not a symbolic link) of the worker's own user that nobody else may write to:
    otherwise another local user could swap a task's socket for their own."""
    root = Path(settings.AGENT_GATEWAY_SOCKET_ROOT)
    fix = (
        "Set AGENT_GATEWAY_SOCKET_ROOT to a folder the worker's user owns, with mode 0711 "
        "or 0700; the task was not run."
    )
    try:
        root.mkdir(mode=0o711, parents=True, exist_ok=True)
        found = root.lstat()
    except OSError as exc:
        raise SocketRootUnsafe(
            f"AGENT_GATEWAY_SOCKET_ROOT ({root}) cannot be created ({exc.strerror}). {fix}"
        ) from None
    problem = ""
    if stat.S_ISLNK(found.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(found.st_mode):
        problem = "is not a folder"
    elif found.st_uid != os.geteuid():
        problem = f"belongs to uid {found.st_uid}, not to the worker's uid {os.geteuid()}"
    elif found.st_mode & 0o022:
        problem = f"is writable by group or others (mode {stat.S_IMODE(found.st_mode):o})"
    if problem:
        raise SocketRootUnsafe(f"AGENT_GATEWAY_SOCKET_ROOT ({root}) {problem}. {fix}")
    return root


@contextlib.contextmanager
def _task_gateway(
    task: CodingTask, root: Path, auth: AuthResolution, placeholder: str, log: TaskLog
) -> Iterator[tuple[TaskGateway, Path]]:
    """The task's gateway on a socket in a fresh folder of its own under root (checked by
    _socket_root); both gone afterwards."""
    # Short (a socket path has ~100 bytes) and unguessable; 0711: uid 1000 in the container
    # may reach the socket by name but not list the folder.
    socket_dir = root / f"t{task.pk}-{secrets.token_hex(6)}"
    socket_dir.mkdir(mode=0o711)
    socket_dir.chmod(0o711)  # whatever the umask says
    credential_id = _oauth_credential_id(auth)
    # What task_follow needs to put a gateway back on this socket if this process dies (the
    # credential is the task's auth_credential_id, saved with the auth choice).
    CodingTask.objects.filter(pk=task.pk).update(
        gateway_dir=str(socket_dir), gateway_placeholder=placeholder
    )
    gateway = _gateway_new(socket_dir, credential_id, auth.api_key, placeholder, log)
    try:
        gateway.start()
        yield gateway, socket_dir
    finally:
        gateway.stop()  # idempotent: the socket is closed and removed before the folder
        shutil.rmtree(socket_dir, ignore_errors=True)


def _gateway_new(
    socket_dir: Path, credential_id: int | None, api_key: str, placeholder: str, log: TaskLog
) -> TaskGateway:
    """The task's gateway: OAuth when it runs on a stored credential, else the API key."""
    if credential_id is not None:
        upstream = UpstreamAuth("oauth")
        provider: Any = oauth_provider(credential_id=credential_id)
    else:
        upstream = UpstreamAuth("api_key")
        provider = api_key_provider(api_key=api_key)
    return TaskGateway(
        socket_path=socket_dir / GATEWAY_SOCKET_NAME,
        auth=upstream,
        provider=provider,
        placeholder=placeholder,
        on_log=log.gateway_line,
    )


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
        name=f"claude-runner-task-{task.pk}-{int(time.time())}",
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
        _finish(task.pk, TaskStatus.FAILED, error=str(exc))
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
        gateway = _gateway_again(task, log)
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
        _usage_record(task.pk, usage)
        log.finish()
        auth = RunAuth(task.auth_method, task.auth_source, task.auth_credential_id)
        _record_outcome(task, outcome, log, usage, auth=auth)
        workspace_record(task=task, outcome=outcome, log=log)
    except Exception as exc:
        logger.exception("Taking over task %s failed", task_id)
        log.note(f"Could not follow the container: {log.redact(str(exc))}")
        _finish(
            task.pk,
            TaskStatus.FAILED,
            error=f"The task was interrupted: {reason}, and its container could not be "
            f"followed ({log.redact(str(exc))}). Submit it again.",
        )
    finally:
        if gateway is not None:
            gateway.stop()
        if task.gateway_dir:
            shutil.rmtree(task.gateway_dir, ignore_errors=True)


def _gateway_again(task: CodingTask, log: TaskLog) -> TaskGateway | None:
    """A new gateway on the dead worker's socket path (its folder is still mounted into the
    container), with the same placeholder and credential; None when that cannot be done (the
    container then runs on without the model API, and says so in its result)."""
    if not (task.gateway_dir and task.gateway_placeholder):
        log.note("No gateway to put back (the worker stopped before it had one).")
        return None
    api_key = "" if task.auth_credential_id is not None else _api_key_of(task)
    if task.auth_credential_id is None and not api_key:
        log.note("The task's API key is gone: its gateway cannot be put back.")
        return None
    gateway = _gateway_new(
        Path(task.gateway_dir),
        task.auth_credential_id,
        api_key,
        task.gateway_placeholder,
        log,
    )
    gateway.start()
    log.note("Its gateway is back on the same socket.")
    return gateway


def _api_key_of(task: CodingTask) -> str:
    """The API key the task ran on: its owner's own, or the server's."""
    if task.auth_source == "user":
        return preferences_get(user=task.owner).api_key
    return settings.ANTHROPIC_API_KEY


def _follow_secrets(task: CodingTask) -> list[str]:
    """What to redact from a taken-over task's log: as for task_run (tasks.inputs)."""
    agent_env, _ = agent_env_for_task(user=task.owner)
    values = [task.gateway_placeholder, *agent_env.values()]
    if task.auth_credential_id is not None:
        credential = OAuthCredential.objects.filter(pk=task.auth_credential_id).first()
        if credential is not None:
            values += [credential.access_token, credential.refresh_token]
    else:
        values.append(_api_key_of(task))
    return [v for v in values if v]


def _usage_record(task_id: int, usage: GatewayUsage) -> None:
    CodingTask.objects.filter(pk=task_id).update(
        api_requests=usage.requests,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens,
        api_status_429=usage.status_429,
        api_status_529=usage.status_529,
        ratelimit_headers=usage.ratelimit_headers,
    )


def _oauth_credential_id(auth: AuthResolution) -> int | None:
    """The stored OAuth credential the task runs on; None when it runs on an API key."""
    return auth.oauth.credential_id if auth.method == AuthMethod.OAUTH and auth.oauth else None


def _record_outcome(
    task: CodingTask,
    outcome: ContainerOutcome,
    log: TaskLog,
    usage: GatewayUsage,
    *,
    auth: RunAuth,
) -> None:
    # The stream first, then what the gateway saw of the same answers (tasks.limits).
    limit = run_limit_of(
        log=log,
        result=outcome_result(outcome=outcome, log=log),
        now=timezone.now(),
        gateway_headers=usage.ratelimit_headers,
        gateway_status_429=usage.status_429,
    )
    status, error, values = outcome_values(outcome=outcome, log=log, limit=limit)
    status, error, values = limit_actions.limits_after_run(
        task=task, auth=auth, limit=limit, status=status, error=error, values=values
    )
    _finish(task.pk, status, error=error, **values)


def _finish(task_id: int, status: str, *, error: str = "", **values: Any) -> None:
    # Only a running task is finished here: recovery may have settled it already.
    waiting = status == TaskStatus.WAITING
    # The placeholder goes with the task's socket: nothing can use it any more.
    finished = CodingTask.objects.filter(pk=task_id, status=TaskStatus.RUNNING).update(
        status=status,
        error_message=error,
        finished_at=None if waiting else timezone.now(),
        gateway_placeholder="",
        **values,
    )
    logger.info("Task %s finished: %s", task_id, status)
    if finished:
        limit_actions.task_settled(task_id=task_id, status=status)
