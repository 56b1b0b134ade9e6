"""The setup phase of a task with an environment (environments/): before the agent, in a
container of its own hardened like the agent's, with a gateway of its own on a fresh socket
(the environment's setup egress rules; no model credential behind it, and the container never
learns its placeholder), the setup script runs on a fresh checkout, or the maintenance script
on a cached snapshot with the task's commit checked out onto it. Setup secrets go to this
container only, and only when it runs on the repository's own commits; what it leaves in the
home (but the runner's inputs) is what the agent's container starts from, and after a fresh
setup on the base branch's remote commit it is also kept as the snapshot (environments.cache);
tasks.run.setup_rights decides both. An environment its owner may no longer use fails the task
before anything of it is used.

A failing setup ends the task before any model request, with the exit code and the end of its
log; the setup log is its own section on the task page.
"""

import logging
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import docker
from django.conf import settings
from django.utils import timezone

from common.errors import InputError
from common.netpolicy import EgressPolicy, egress_policy_within
from environments.cache import SnapshotKey, snapshot_find, snapshot_owner_id, snapshot_store
from environments.devcontainer import PATH as DEVCONTAINER_PATH
from environments.devcontainer import DevContainer, devcontainer_parse
from environments.egress import environment_egress_policy
from environments.models import CacheUse, Environment, EnvironmentSnapshot
from environments.selectors import (
    environment_secrets_for,
    environment_usable,
    environment_variables_for,
    task_environment_get,
)
from environments.services import task_environment_record
from environments.validation import image_check, images_allowed
from gateway.credentials import api_key_provider
from gateway.egress import egress_policy_with_api
from gateway.runtime import GatewaySetup, TaskGateway, UpstreamAuth, placeholder_new
from tasks.models import CodingTask, TaskStatus
from tasks.results import RunResult
from tasks.waits.engine import engine_wait_plan

from .containers import (
    PHASE_LABEL,
    TASK_DIR,
    ContainerError,
    ContainerOutcome,
    ContainerSpec,
    EngineUnreachable,
    InputFile,
    container_labels,
    container_run,
)
from .gateway import GATEWAY_SOCKET_NAME, socket_dir_give
from .home import home_put, home_save
from .log import TaskLog
from .setup_log import SetupLog
from .setup_rights import SetupRights, setup_rights
from .workspace import Workspace
from .worktree import tree_put

logger = logging.getLogger(__name__)

PHASE_SCRIPT = Path(__file__).resolve().parents[2] / "agent" / "setup-phase.sh"
HOME_TAR = "home.tar"


@dataclass(frozen=True)
class Prepared:
    """What the agent's container starts from when the task has an environment."""

    image: str
    home_tar: Path  # put into the agent's home before it starts (a copy: never written back)
    variables: dict[str, str]  # non-secret: the container's environment
    agent_egress: EgressPolicy
    secrets: list[str] = field(default_factory=list, repr=False)  # redacted from the logs


@dataclass(frozen=True)
class SetupReady:
    """What the runner has ready when setup starts."""

    client: docker.DockerClient
    workspace: Callable[[], Workspace]  # waits for a follow-up's earlier commits to be in
    socket_root: Path
    agent_uid: int  # the task's uid (tasks.run.agent_user): setup runs as it too


@dataclass(frozen=True)
class _Plan:
    environment: Environment
    image: str
    key: SnapshotKey
    snapshot: EnvironmentSnapshot | None
    script: str
    rights: SetupRights
    setup_secrets: dict[str, str] = field(repr=False)  # what the container gets: maybe none
    egress: EgressPolicy  # where the setup may connect
    egress_cut: bool  # less than the setup's own level: no more than the agent's (rights)
    agent_egress: EgressPolicy  # where the agent may connect (without the model API's route)


def setup_phase(
    *, task: CodingTask, ready: SetupReady, log: TaskLog
) -> Prepared | RunResult | None:
    """Run the task's environment's setup; None when the task has no environment, a RunResult
    when the task ends here (setup failed, cancelled, the engine went away)."""
    run = task_environment_get(task_id=task.pk)
    if run is None:
        return None
    environment = run.environment
    if environment is None:
        log.note(f"The environment {run.name} was deleted meanwhile; the task runs without one.")
        return None
    # Chosen when the task was made: its owner may have lost it since (no longer shared).
    usable = environment_usable(user=task.owner, environment_id=environment.pk)
    if usable is None:
        message = f"The environment {run.name} is no longer available to you; the task did not run."
        log.note(message)
        return _setup_failed(task.pk, message)
    environment = usable  # with its owner, whom the agent's egress rules ask about
    workspace = ready.workspace()
    plan = _plan(task, environment, workspace, log)
    if isinstance(plan, RunResult):
        return plan
    prepared = Prepared(
        image=plan.image,
        home_tar=workspace.path.parent / HOME_TAR,
        variables=environment_variables_for(environment=environment),
        agent_egress=egress_policy_with_api(plan.agent_egress),
        # Redacted even when withheld: a value that shows up anyway never reaches a page.
        secrets=list((environment.setup_secrets or {}).values()),
    )
    snapshot = plan.snapshot
    if snapshot is not None and snapshot.commit == workspace.start_commit and not plan.script:
        # Nothing to check out and nothing to run: the agent starts from a copy of the snapshot.
        task_environment_record(
            task_id=task.pk,
            version=environment.version,
            cache=CacheUse.HIT,
            setup_seconds=0.0,
            snapshot_bytes=snapshot.size_bytes,
        )
        log.note(
            f"Environment {environment.name} v{environment.version}: cache hit, nothing to run"
        )
        return replace(prepared, home_tar=_pinned(snapshot, workspace))
    return _setup_container(task, ready, log, plan, prepared)


def _plan(
    task: CodingTask, environment: Environment, workspace: Workspace, log: TaskLog
) -> _Plan | RunResult:
    try:
        image = image_check(image=environment.image)
    except InputError as exc:
        return _setup_failed(task.pk, f"Setup failed: {exc.message}")
    devcontainer: DevContainer | None = None
    if environment.devcontainer:
        read = _devcontainer(workspace, log)
        if isinstance(read, InputError):
            return _setup_failed(task.pk, f"Setup failed: {read.message}")
        devcontainer = read
        if devcontainer is not None and devcontainer.image:
            if devcontainer.image in images_allowed():
                image = devcontainer.image
            else:
                log.note(
                    f"{DEVCONTAINER_PATH} names the image {devcontainer.image[:100]}, which is not "
                    f"on the allowed list; the environment's image {image} is used."
                )
    owner_id = snapshot_owner_id(environment=environment, task_owner_id=task.owner_id)
    key = SnapshotKey(environment, owner_id, image, task.repo_url, workspace.base_branch)
    snapshot = snapshot_find(key=key)
    fresh = snapshot is None
    script = environment.setup_script if fresh else environment.maintenance_script
    if devcontainer is not None:
        script = f"{script}\n{devcontainer.script(fresh=fresh)}"
    rights = setup_rights(workspace=workspace)
    secrets = (
        environment_secrets_for(environment=environment, user_id=task.owner_id)
        if rights.secrets
        else {}
    )
    agent_egress = environment_egress_policy(environment=environment, phase="agent")
    own = environment_egress_policy(environment=environment, phase="setup")
    egress = own
    if not rights.secrets:
        # Not the repository's own commits: what the setup runs may be an earlier agent's,
        # which would reach through setup what the agent itself may not.
        egress = egress_policy_within(policy=own, bounds=agent_egress)
    return _Plan(
        environment,
        image,
        key,
        snapshot,
        script.strip(),
        rights,
        secrets,
        egress,
        egress != own,
        agent_egress,
    )


def _devcontainer(workspace: Workspace, log: TaskLog) -> DevContainer | InputError | None:
    """The repository's devcontainer.json at the task's commit, read on the worker."""
    shown = subprocess.run(
        ["git", "-C", str(workspace.path), "show", f"HEAD:{DEVCONTAINER_PATH}"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if shown.returncode != 0:
        log.note(f"The repository has no {DEVCONTAINER_PATH}; only the environment's script runs.")
        return None
    try:
        return devcontainer_parse(raw=shown.stdout)
    except InputError as exc:
        return exc


def _pinned(snapshot: EnvironmentSnapshot, workspace: Workspace) -> Path:
    """The snapshot's file, hard-linked into the task's folder where it can be: an eviction by
    another task meanwhile then removes only the cache's name for it."""
    source = Path(snapshot.path)
    pinned = workspace.path.parent / "snapshot.tar"
    try:
        pinned.unlink(missing_ok=True)
        os.link(source, pinned)
    except OSError:  # another file system: read it in place
        return source
    return pinned


def _setup_failed(task_id: int, message: str) -> RunResult:
    task_environment_record(task_id=task_id, cache=CacheUse.NONE)
    return RunResult(TaskStatus.FAILED, message)


@contextmanager
def _setup_gateway(
    task: CodingTask, ready: SetupReady, policy: EgressPolicy, setup_log: SetupLog, log: TaskLog
) -> Iterator[Path]:
    """The setup's own gateway, handed to the task's uid like the agent's: its egress rules;
    the model route answers nobody (the placeholder is made here and never leaves this
    function); gone afterwards."""
    socket_dir = ready.socket_root / f"s{task.pk}-{secrets.token_hex(6)}"
    socket_dir.mkdir(mode=0o700)
    socket_owner = socket_dir_give(socket_dir, ready.agent_uid, log)
    gateway = TaskGateway(
        socket_path=socket_dir / GATEWAY_SOCKET_NAME,
        auth=UpstreamAuth("api_key"),
        # No credential: a worthless key behind a placeholder the container never sees.
        provider=api_key_provider(api_key=f"no-model-during-setup-{secrets.token_hex(8)}"),
        placeholder=placeholder_new(),
        on_log=setup_log.gateway_line,
        setup=GatewaySetup(socket_owner=socket_owner, egress=egress_policy_with_api(policy)),
    )
    try:
        gateway.start()
        yield socket_dir
    finally:
        gateway.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)


def _setup_container(
    task: CodingTask, ready: SetupReady, log: TaskLog, plan: _Plan, prepared: Prepared
) -> Prepared | RunResult:
    environment, snapshot = plan.environment, plan.snapshot
    workspace, uid = ready.workspace(), ready.agent_uid
    cache = CacheUse.MISS if snapshot is None else CacheUse.HIT
    task_environment_record(task_id=task.pk, version=environment.version, cache=cache)
    what = "setup script" if snapshot is None else "maintenance script on the cached snapshot"
    log.note(f"Environment {environment.name} v{environment.version}: running the {what}")
    setup_log = SetupLog(
        secrets=[*prepared.secrets, *log.secrets],
        max_bytes=settings.AGENT_SETUP_LOG_MAX_BYTES,
        on_flush=lambda text, cut: task_environment_record(
            task_id=task.pk, setup_log=text, setup_log_truncated=cut
        ),
    )
    _setup_notes(plan, setup_log)
    files = [
        InputFile(f"{TASK_DIR}/setup-phase.sh", PHASE_SCRIPT.read_bytes(), 0o700),
        InputFile(f"{TASK_DIR}/setup.sh", plan.script.encode(), 0o600),
        *(
            InputFile(f"{TASK_DIR}/secret-env/{name}", value.encode(), 0o600)
            for name, value in plan.setup_secrets.items()
        ),
    ]
    if snapshot is None:
        prepare = [lambda c: tree_put(container=c, src=workspace.path, uid=uid)]
    else:
        pinned = _pinned(snapshot, workspace)
        prepare = [
            lambda c: home_put(container=c, src=pinned, uid=uid),
            lambda c: tree_put(container=c, src=workspace.path, name="next", uid=uid),
        ]

    def keep_home(container: object, outcome: ContainerOutcome) -> None:
        if outcome.exit_code == 0 and not (outcome.timed_out or outcome.cancelled):
            home_save(
                container=container,  # type: ignore[arg-type]
                dest=prepared.home_tar,
                max_bytes=int(settings.AGENT_ENV_CACHE_MAX_GB * 1024**3),
                uid=uid,
            )

    started = time.monotonic()
    with _setup_gateway(task, ready, plan.egress, setup_log, log) as socket_dir:
        spec = ContainerSpec(
            image=plan.image,
            env={
                **prepared.variables,
                "AGENT_GATEWAY_PORT": str(settings.AGENT_GATEWAY_PORT),
                # Its first and its last half: the whole fits the setup log.
                "AGENT_SETUP_LOG_MAX_BYTES": str(settings.AGENT_SETUP_LOG_MAX_BYTES // 2 - 1024),
            },
            files=files,
            labels={**container_labels(task_id=task.pk), PHASE_LABEL: "setup"},
            name=f"claude-runner-setup-{task.pk}-{secrets.token_hex(6)}",
            timeout_seconds=settings.AGENT_SETUP_TIMEOUT_SECONDS,
            network_mode=settings.AGENT_NETWORK_MODE,
            mem_limit=settings.AGENT_MEMORY_LIMIT or None,
            nano_cpus=int(settings.AGENT_CPUS * 1e9) if settings.AGENT_CPUS else None,
            pids_limit=settings.AGENT_PIDS_LIMIT or None,
            gateway_dir=str(socket_dir),
            uid=uid,
            prepare=prepare,
            finish=[keep_home],
            entrypoint=["/bin/bash", f"{TASK_DIR}/setup-phase.sh"],
        )
        try:
            outcome = container_run(
                client=ready.client,
                spec=spec,
                on_started=lambda _id: None,
                on_output=setup_log.feed,
                should_cancel=lambda: _cancel_requested(task.pk),
                max_output_bytes=1024,
            )
        except EngineUnreachable as exc:
            setup_log.note(str(exc))
            setup_log.finish()
            return engine_wait_plan(task_id=task.pk, reason=str(exc), now=timezone.now())
        except ContainerError as exc:
            setup_log.note(str(exc))
            setup_log.finish()
            return _setup_failed(task.pk, f"Setup failed: {exc}")
    seconds = time.monotonic() - started
    setup_log.finish()
    task_environment_record(
        task_id=task.pk, setup_seconds=round(seconds, 3), setup_exit_code=outcome.exit_code
    )
    failed = _verdict(outcome, setup_log)
    if failed is not None:
        log.note(failed.message)
        return failed
    size = prepared.home_tar.stat().st_size
    task_environment_record(task_id=task.pk, snapshot_bytes=size)
    log.note(f"Setup finished in {seconds:.1f} s")
    if snapshot is None:
        _snapshot_keep(task, plan, workspace, prepared, log)
    return prepared


def _setup_notes(plan: _Plan, setup_log: SetupLog) -> None:
    """What the setup runs without, first in its log."""
    if plan.environment.has_setup_secrets and not plan.rights.secrets:
        setup_log.note(
            f"The setup secrets are withheld: {plan.rights.why_not}; they go only to a setup on "
            "the repository's own commits, so a step that needs them (a private registry) may fail."
        )
    elif plan.environment.has_setup_secrets and not plan.setup_secrets:
        setup_log.note(
            "The setup secrets are withheld: a shared environment's secrets go to its owner's "
            "tasks alone, so a step that needs them (a private registry) may fail."
        )
    if plan.egress_cut:
        setup_log.note(
            f"The setup reaches no host the agent may not reach: {plan.rights.why_not}, and what "
            "it runs may be that agent's; a step that needs more (a package registry) may fail."
        )


def _snapshot_keep(
    task: CodingTask, plan: _Plan, workspace: Workspace, prepared: Prepared, log: TaskLog
) -> None:
    """After a fresh setup: its home becomes the cached snapshot, only when the setup ran on
    the base branch's commit as fetched from the remote (setup_rights)."""
    if not plan.rights.snapshot:
        log.note(f"Not cached: {plan.rights.why_not}")
        return
    try:
        kept = snapshot_store(key=plan.key, commit=workspace.start_commit, source=prepared.home_tar)
    except OSError as exc:  # the task goes on; the next one runs setup again
        logger.exception("Could not cache the environment of task %s", task.pk)
        log.note(f"The environment could not be cached ({exc.strerror or exc})")
    else:
        log.note(f"The environment is cached ({kept.size_bytes:,} bytes) for the next task")


def agent_egress_for_task(*, task_id: int) -> EgressPolicy | None:
    """The agent phase's egress rules of a task with an environment (None: the settings')."""
    run = task_environment_get(task_id=task_id)
    if run is None or run.environment is None:
        return None
    return egress_policy_with_api(
        environment_egress_policy(environment=run.environment, phase="agent")
    )


def _cancel_requested(task_id: int) -> bool:
    return CodingTask.objects.filter(pk=task_id, cancel_requested=True).exists()


def _verdict(outcome: ContainerOutcome, setup_log: SetupLog) -> RunResult | None:
    """None when setup succeeded; else how the task ends."""
    if outcome.cancelled:
        return RunResult(TaskStatus.CANCELLED, "Cancelled at your request (during setup).")
    tail = setup_log.tail()
    end = f" The end of its log:\n{tail}" if tail else ""
    if outcome.timed_out:
        limit = settings.AGENT_SETUP_TIMEOUT_SECONDS
        return RunResult(
            TaskStatus.FAILED,
            f"Setup failed: it ran longer than the limit of {limit} s "
            f"(AGENT_SETUP_TIMEOUT_SECONDS) and was stopped; the agent did not run.{end}",
        )
    if outcome.exit_code != 0:
        return RunResult(
            TaskStatus.FAILED,
            f"Setup failed with exit code {outcome.exit_code}; the agent did not run.{end}",
        )
    return None
