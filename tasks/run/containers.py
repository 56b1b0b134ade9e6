"""The Docker side of a task: one container, created, fed, started, watched, emptied, removed.

Follows agent/README.md (the agent container contract). Inputs reach the container only as
files written with put_archive before start (never env, command, labels or name), so
`docker inspect` shows none of them.

Hardening: no capabilities, no-new-privileges, a pids limit, a capped engine log, a read-only
root file system, no network by default (the task's gateway socket is its only way out). The
home is in a fresh anonymous volume at /home (copied from the image, removed with the
container): put_archive cannot write to a read-only root, nor into a tmpfs before the container
starts, but it can write into a volume. /tmp is a tmpfs. The agent runs as the task's own uid
(tasks.run.agent_user), which owns its home.
"""

import hashlib
import io
import logging
import os
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import requests
from django.conf import settings
from docker.errors import DockerException, NotFound
from docker.models.containers import Container
from docker.types import LogConfig, Mount

from .archives import ChunkReader, InputFile, inputs_tar, outputs_untar

logger = logging.getLogger(__name__)

APP_LABEL = "claude-runner"
INSTANCE_LABEL = "claude-runner.instance"
# "setup" on an environment's setup container (tasks.run.setup): never taken for the agent's.
PHASE_LABEL = "claude-runner.phase"
HOME = "/home/agent"
TASK_DIR = f"{HOME}/task"
OUT_DIR = f"{HOME}/out"
CREDENTIALS_PATH = f"{HOME}/.claude/.credentials.json"
AGENT_UID = AGENT_GID = 1000  # the images' own agent user
# The volume holding the home: its parent, so the home folder itself can be given to the
# task's uid (Docker never changes the owner of the folder it extracts into).
HOME_VOLUME = "/home"
STOP_GRACE_SECONDS = 10
# Where the task's gateway socket directory is mounted (agent/README.md).
GATEWAY_MOUNT = "/run/claude-runner-gateway"
TMP_TMPFS_OPTIONS = "rw,exec,nosuid,nodev,size=1g,mode=1777"
# The engine's own copy of a container's output, which the runner reads as it comes: at most
# LOG_FILES files of LOG_FILE_SIZE each, however much the agent prints. Large files: Docker
# 20.10's follow, across a rotation, was seen to repeat and drop output (the runner reads
# result.json from the container's out folder, not from the log).
LOG_FILE_SIZE = "50m"
LOG_FILES = "2"
# What the runner reads back from /home/agent/out (stream.jsonl may be huge: not read).
OUTPUT_FILES = {
    "result.json",
    "diff.patch",
    "changed_files.txt",
    "exit_code",
    "changes.bundle",
    # The agent's session, for a follow-up (tasks.run.conversation bounds and checks it).
    "session/id",
    "session/transcript.jsonl",
    "session/status.json",
}
# Of no use cut: over the cap, such a file is not read at all (its size is in the tar header).
OUTPUT_WHOLE_ONLY = {"changes.bundle", "session/transcript.jsonl"}


@dataclass
class ContainerSpec:
    image: str
    env: dict[str, str]  # non-secret only: it is visible in docker inspect
    files: list[InputFile] = field(repr=False)
    labels: dict[str, str]
    name: str
    timeout_seconds: float
    # "none": the gateway socket is the only way out. Anything else is an unsafe escape hatch.
    network_mode: str = "none"
    mem_limit: str | None = None
    nano_cpus: int | None = None
    pids_limit: int | None = 512
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    # Host directory holding this task's gateway socket; mounted read-only at GATEWAY_MOUNT.
    gateway_dir: str | None = None
    read_back: list[str] = field(default_factory=list)  # extra files to collect after the run
    uid: int = AGENT_UID  # the host uid and gid the agent runs as; it owns the home
    # Called with the created container before it starts (e.g. putting the working tree in).
    prepare: list[Callable[[Container], None]] = field(default_factory=list)
    # Called once it has stopped, before it is removed (e.g. keeping what a setup made).
    finish: list[Callable[[Container, "ContainerOutcome"], None]] = field(default_factory=list)
    # Instead of the image's entrypoint (the setup phase runs its own script).
    entrypoint: list[str] | None = None


@dataclass
class ContainerOutcome:
    container_id: str
    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False
    outputs: dict[str, bytes] = field(default_factory=dict)  # files of /home/agent/out
    too_large: dict[str, int] = field(default_factory=dict)  # OUTPUT_WHOLE_ONLY left unread


class ContainerError(Exception):
    """The engine could not run the container; the message says what to do."""


class EngineUnreachable(ContainerError):
    """The Docker engine did not answer at all (stopped, restarting, wrong DOCKER_HOST): a task
    may wait for it rather than fail (tasks.waits.engine)."""


ENGINE_UNREACHABLE = "Cannot reach the Docker engine"


def docker_client() -> docker.DockerClient:
    # from_env asks the engine for its API version, so an engine that is down fails here.
    try:
        return docker.from_env(timeout=60)
    except (DockerException, requests.RequestException) as exc:
        raise EngineUnreachable(
            f"{ENGINE_UNREACHABLE} ({exc}). Start it (scripts/docker-engine.sh start) "
            "and set DOCKER_HOST."
        ) from exc


_engine_ids: dict[str, str] = {}


def engine_id(*, client: docker.DockerClient) -> str:
    """The engine's own id (stable per host), asked once per DOCKER_HOST."""
    key = os.environ.get("DOCKER_HOST", "")
    if key not in _engine_ids:
        try:
            _engine_ids[key] = str(client.info().get("ID", ""))
        except (DockerException, requests.RequestException) as exc:
            raise EngineUnreachable(f"{ENGINE_UNREACHABLE} ({exc}).") from exc
    return _engine_ids[key]


def container_create_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """Everything `containers.create` gets for a task: the one place the hardening is set."""
    volumes = dict(spec.volumes)
    if spec.gateway_dir:
        volumes[spec.gateway_dir] = {"bind": GATEWAY_MOUNT, "mode": "ro"}
    chosen = {"entrypoint": spec.entrypoint} if spec.entrypoint else {}
    return chosen | {
        "image": spec.image,
        "environment": spec.env,
        "labels": spec.labels,
        "name": spec.name,
        "user": f"{spec.uid}:{spec.uid}",
        "network_mode": spec.network_mode,
        "mem_limit": spec.mem_limit,
        "nano_cpus": spec.nano_cpus,
        "pids_limit": spec.pids_limit,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        # An anonymous volume, filled from the image's /home, removed with the container.
        "mounts": [Mount(target=HOME_VOLUME, source=None, type="volume")],
        "tmpfs": {"/tmp": TMP_TMPFS_OPTIONS},  # noqa: S108 (the container's /tmp, a tmpfs)
        "log_config": LogConfig(
            type=LogConfig.types.JSON, config={"max-size": LOG_FILE_SIZE, "max-file": LOG_FILES}
        ),
        "volumes": volumes or None,
        "detach": True,
    }


def container_run(
    *,
    client: docker.DockerClient,
    spec: ContainerSpec,
    on_started: Callable[[str], None],
    on_output: Callable[[bytes], None],
    should_cancel: Callable[[], bool],
    max_output_bytes: int,
) -> ContainerOutcome:
    """Run the container to the end, a timeout or a cancel; always remove it (and its home)."""
    try:
        container: Container = client.containers.create(**container_create_kwargs(spec))
    except docker.errors.ImageNotFound as exc:
        raise ContainerError(
            f"The agent image {spec.image} is not on this Docker engine. Build it with "
            "scripts/build-agent-images.sh (or set AGENT_IMAGE)."
        ) from exc
    except requests.ConnectionError as exc:
        raise EngineUnreachable(f"{ENGINE_UNREACHABLE} ({exc}).") from exc
    except DockerException as exc:
        raise ContainerError(f"Docker could not create the container: {exc}") from exc
    try:
        if spec.uid != AGENT_UID:
            home_give(container, uid=spec.uid)
        if not container.put_archive(HOME, inputs_tar(spec.files, home=HOME, uid=spec.uid)):
            raise ContainerError("Docker refused the task's input files.")
        for prepare in spec.prepare:
            prepare(container)
        container.start()
        on_started(container_id_of(container))
        outcome = _watch(container, spec.timeout_seconds, on_output, should_cancel)
        outcome.outputs, outcome.too_large = _collect(
            container, OUT_DIR, OUTPUT_FILES, max_output_bytes
        )
        for finish in spec.finish:
            finish(container, outcome)
        return outcome
    finally:
        _remove(container)


def home_give(container: Container, *, uid: int) -> None:
    """Give the home, and what in it the image's agent user owns, to uid (and gid) before the
    container starts: the agent may then write there as it does as the image's user."""
    chunks, _ = container.get_archive(HOME)
    # The image's home is small; a spool keeps a larger one off the heap.
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        with (
            tarfile.open(fileobj=io.BufferedReader(ChunkReader(chunks)), mode="r|") as source,
            tarfile.open(fileobj=spool, mode="w") as target,
        ):
            for member in source:
                if member.uid == AGENT_UID:
                    member.uid = uid
                if member.gid == AGENT_GID:
                    member.gid = uid
                member.uname = member.gname = ""
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
        spool.seek(0)
        if not container.put_archive(HOME_VOLUME, spool):
            raise ContainerError("Docker refused to give the home to the task's user.")


def container_follow(
    *,
    client: docker.DockerClient,
    container_id: str,
    timeout_seconds: float,
    on_output: Callable[[bytes], None],
    should_cancel: Callable[[], bool],
    max_output_bytes: int,
) -> ContainerOutcome:
    """A task's container that another process started, watched like container_run does: its
    whole log (again from the start), to its end, a timeout or a cancel; then its outputs, and
    it is removed. A container that has already exited is simply read and removed."""
    try:
        container: Container = client.containers.get(container_id)
    except NotFound as exc:
        raise ContainerError("its container is gone") from exc
    try:
        outcome = _watch(container, timeout_seconds, on_output, should_cancel)
        outcome.outputs, outcome.too_large = _collect(
            container, OUT_DIR, OUTPUT_FILES, max_output_bytes
        )
        return outcome
    finally:
        _remove(container)


def _remove(container: Container) -> None:
    try:
        container.remove(force=True, v=True)
    except NotFound:
        pass
    except DockerException:
        logger.exception("Could not remove container %s", container.id)


def _watch(
    container: Container,
    timeout_seconds: float,
    on_output: Callable[[bytes], None],
    should_cancel: Callable[[], bool],
) -> ContainerOutcome:
    exited = threading.Event()
    result: dict[str, int] = {}

    def wait() -> None:
        try:
            result["code"] = container.wait()["StatusCode"]
        except (DockerException, requests.RequestException):
            logger.exception("Waiting for container %s failed", container.id)
        finally:
            exited.set()

    waiter = threading.Thread(target=wait, daemon=True)
    streamer = threading.Thread(target=_output_read, args=(container, on_output), daemon=True)
    waiter.start()
    streamer.start()
    deadline = time.monotonic() + timeout_seconds
    timed_out = cancelled = False
    next_cancel_check = time.monotonic() + 1
    # The waiter thread wakes us the moment the container exits; we only poll for cancel/timeout.
    while not exited.wait(timeout=0.2):
        now = time.monotonic()
        if now >= deadline:
            timed_out = True
        elif now >= next_cancel_check:
            next_cancel_check = now + 1
            cancelled = should_cancel()
        if timed_out or cancelled:
            # SIGTERM first: the entrypoint stops the agent and still writes the partial diff.
            container.stop(timeout=STOP_GRACE_SECONDS)
            exited.wait(timeout=STOP_GRACE_SECONDS + 30)
            break
    streamer.join(timeout=10)
    return ContainerOutcome(
        container_id=container_id_of(container),
        exit_code=result.get("code"),
        timed_out=timed_out,
        cancelled=cancelled,
    )


def _output_read(container: Container, on_output: Callable[[bytes], None]) -> None:
    """The container's output to its reader, chunk by chunk, to the stream's end. The output is
    the agent's: whatever a chunk does to the reader, the stream goes on with the next (a reader
    stopped here would lose the rest of the run's log and what limits read from it). Only the
    first failure is logged whole: an agent could repeat it for every chunk."""
    failed = 0
    try:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            try:
                on_output(chunk)
            except Exception:
                if not failed:
                    logger.exception(
                        "Reading container %s's output failed; reading on", container.id
                    )
                failed += 1
    except (DockerException, requests.RequestException):
        logger.warning("Log stream of container %s ended early", container.id)
    if failed > 1:
        logger.error("%d chunks of container %s's output could not be read", failed, container.id)


def _collect(
    container: Container, path: str, wanted: set[str] | None, max_bytes: int
) -> tuple[dict[str, bytes], dict[str, int]]:
    try:
        chunks, _ = container.get_archive(path)
    except NotFound:
        return {}, {}
    return outputs_untar(chunks, wanted=wanted, max_bytes=max_bytes, whole_only=OUTPUT_WHOLE_ONLY)


def instance_id() -> str:
    """Which installation a container belongs to, so two installations (or a test run) sharing
    one engine never clean up each other's containers. One-way: reveals nothing of the key."""
    return hashlib.sha256(f"claude-runner:{settings.SECRET_KEY}".encode()).hexdigest()[:16]


def container_labels(*, task_id: int) -> dict[str, str]:
    return {
        "app": APP_LABEL,
        INSTANCE_LABEL: instance_id(),
        "claude-runner.task-id": str(task_id),
    }


def containers_ours(*, client: docker.DockerClient) -> list[Container]:
    """Every container of this installation on this engine (by label), running or not."""
    labels = [f"app={APP_LABEL}", f"{INSTANCE_LABEL}={instance_id()}"]
    return client.containers.list(all=True, filters={"label": labels})


def container_id_of(container: Container) -> str:
    """Docker's types allow a model without an id; a container the engine gave us has one."""
    if not container.id:
        raise ContainerError("Docker returned a container without an id.")
    return container.id


def container_stop_remove(*, client: docker.DockerClient, container_id: str) -> bool:
    try:
        container = client.containers.get(container_id)
    except NotFound:
        return False
    if container.labels.get(INSTANCE_LABEL) != instance_id():
        return False  # never touch a container that is not ours
    container.remove(force=True, v=True)
    return True
