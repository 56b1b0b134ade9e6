"""The task's gateway, from the worker's side: the socket folder it serves in (under
AGENT_GATEWAY_SOCKET_ROOT, checked so no other local user can swap a socket), starting it for a
run, putting it back on the same socket when another worker takes a task over, and recording
what it counted on the task. The runner calls these; gateway/ itself knows nothing of tasks."""

import contextlib
import logging
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.selectors import preferences_get
from common.netpolicy import EgressPolicy
from gateway.credentials import api_key_provider, oauth_provider
from gateway.runtime import GatewaySetup, GatewayUsage, TaskGateway, UpstreamAuth
from oauth_tokens.services import AuthMethod, AuthResolution, AuthSource, limit_reset_capped
from tasks.models import CodingTask, TaskRuntime, TaskUsage

from .log import TaskLog
from .messages import TaskMessageBox

logger = logging.getLogger(__name__)

GATEWAY_SOCKET_NAME = "gateway.sock"


class SocketRootUnsafe(Exception):
    """AGENT_GATEWAY_SOCKET_ROOT is not a folder only the worker can change."""


def gateway_socket_root() -> Path:
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


def socket_dir_give(socket_dir: Path, agent_uid: int, log: TaskLog) -> int | None:
    """Hand the task's socket folder to the agent's uid alone (0700; the socket will be 0600):
    the uid to give the socket to. A worker that may not change owners (not root) leaves the
    folder 0711, so the agent reaches the socket by name but cannot list the folder, and any
    local user who learns the name can too: None, and the log says so."""
    if agent_uid != os.geteuid():
        try:
            os.chown(socket_dir, agent_uid, agent_uid)
        except PermissionError:
            pass
        else:
            socket_dir.chmod(0o700)
            return agent_uid
    socket_dir.chmod(0o711)
    message = (
        "The gateway socket is open to every local user: the worker cannot hand it to the "
        f"agent's uid {agent_uid} alone (run the worker as root for that)."
    )
    logger.warning("Task %s: %s", log.task_id, message)
    log.note(message)
    return None


@contextlib.contextmanager
def task_gateway_open(  # noqa: PLR0913 (the egress rules of an environment's agent phase)
    task: CodingTask,
    root: Path,
    auth: AuthResolution,
    placeholder: str,
    log: TaskLog,
    agent_uid: int,
    egress: EgressPolicy | None = None,
) -> Iterator[tuple[TaskGateway, Path]]:
    """The task's gateway on a socket in a fresh folder of its own under root (checked by
    gateway_socket_root), for the agent's uid only; both gone afterwards. egress: its rules,
    when not the settings' (an environment's agent phase)."""
    # Short (a socket path has ~100 bytes) and unguessable.
    socket_dir = root / f"t{task.pk}-{secrets.token_hex(6)}"
    socket_dir.mkdir(mode=0o700)
    socket_owner = socket_dir_give(socket_dir, agent_uid, log)
    credential_id = auth_oauth_credential_id(auth)
    # What task_follow needs to put a gateway back on this socket if this process dies (the
    # credential is the runtime's credential_id, saved with the auth choice).
    TaskRuntime.objects.filter(pk=task.pk).update(
        gateway_dir=str(socket_dir), gateway_placeholder=placeholder
    )
    gateway = _gateway_new(
        socket_dir,
        credential_id,
        auth.api_key,
        placeholder,
        log,
        GatewaySetup(socket_owner=socket_owner, egress=egress, messages=_message_box(task.pk)),
    )
    try:
        gateway.start()
        yield gateway, socket_dir
    finally:
        gateway.stop()  # idempotent: the socket is closed and removed before the folder
        shutil.rmtree(socket_dir, ignore_errors=True)


def _message_box(task_id: int) -> TaskMessageBox | None:
    """The task's messages for its agent, when messages while running are on."""
    return TaskMessageBox(task_id=task_id) if settings.AGENT_MESSAGES else None


def _gateway_new(
    socket_dir: Path,
    credential_id: int | None,
    api_key: str,
    placeholder: str,
    log: TaskLog,
    setup: GatewaySetup,
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
        setup=setup,
    )


def task_gateway_again(
    task: CodingTask, log: TaskLog, egress: EgressPolicy | None = None
) -> TaskGateway | None:
    """A new gateway on the dead worker's socket path (its folder is still mounted into the
    container), with the same placeholder and credential; None when that cannot be done (the
    container then runs on without the model API, and says so in its result)."""
    runtime = task.runtime
    if not (runtime.gateway_dir and runtime.gateway_placeholder):
        log.note("No gateway to put back (the worker stopped before it had one).")
        return None
    api_key = "" if runtime.credential_id is not None else task_api_key(task)
    if runtime.credential_id is None and not api_key:
        log.note("The task's API key is gone: its gateway cannot be put back.")
        return None
    socket_dir = Path(runtime.gateway_dir)
    # The folder's owner is the agent's uid when the socket was handed to it.
    owner = socket_dir.stat().st_uid if socket_dir.is_dir() else os.geteuid()
    gateway = _gateway_new(
        socket_dir,
        runtime.credential_id,
        api_key,
        runtime.gateway_placeholder,
        log,
        GatewaySetup(
            socket_owner=owner if owner != os.geteuid() else None,
            egress=egress,
            messages=_message_box(task.pk),
        ),
    )
    gateway.start()
    log.note("Its gateway is back on the same socket.")
    return gateway


def task_api_key(task: CodingTask) -> str:
    """The API key the task ran on: its owner's own, or the server's."""
    if task.auth_source == AuthSource.USER:
        return preferences_get(user=task.owner).api_key
    return settings.ANTHROPIC_API_KEY


def task_usage_record(task_id: int, usage: GatewayUsage) -> None:
    """What the task's gateway counted and saw of its credential, on the task (the reset time
    as the API gave it, capped like every reset time)."""
    now = timezone.now()
    TaskUsage.objects.filter(pk=task_id).update(
        requests=usage.requests,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens,
        status_401=usage.status_401,
        status_403=usage.status_403,
        status_429=usage.status_429,
        status_529=usage.status_529,
        ratelimit_headers=usage.ratelimit_headers,
        auth_refreshed_after_401=usage.auth_refreshed_after_401,
        auth_refused=usage.auth_refused,
        accepted_at=usage.accepted_at,
        rate_limit_status=usage.rate_limit_status[:16],
        rate_limit_rejected=usage.rate_limit_rejected,
        rate_limit_reset=limit_reset_capped(resets_at=usage.rate_limit_rejected_reset, now=now),
        rate_limit_claim=usage.rate_limit_rejected_claim[:32],
    )


def auth_oauth_credential_id(auth: AuthResolution) -> int | None:
    """The stored OAuth credential the task runs on; None when it runs on an API key."""
    return auth.oauth.credential_id if auth.method == AuthMethod.OAUTH and auth.oauth else None
