"""Containers for the session tests: resume inputs, the gateway socket, and what the container
changed outside its home (docker diff).

    run = run_session(client, image, prompt="...", repo=make_bare_repo(...),
                      resume=Resume(session_id, transcript), gateway=gw, env={...})
    run.status          # out/session/status.json
    run.out["session/transcript.jsonl"], run.changes, ...
"""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import requests

from tests.agent_image.helpers import (
    AGENT_GID,
    AGENT_UID,
    OUT,
    REPO_IN_CONTAINER,
    TASK,
    _untar,
    input_tar,
)
from tests.agent_image.message_gateway import MessageGateway

RESUME_DIR = f"{TASK}/resume"
GATEWAY_MOUNT = "/run/claude-runner-gateway"
TRANSCRIPT_IN_CONTAINER = "/home/agent/.claude/projects/-home-agent-work/{}.jsonl"


@dataclass
class Resume:
    """What the runner puts in task/resume/ (raw bytes: tests hand in hostile ones)."""

    session_id: str | bytes
    transcript: bytes
    # Instead of the transcript file: a symbolic link to this path.
    transcript_link: str | None = None


@dataclass
class SessionRun:
    exit_code: int
    stdout: str
    stderr: str
    out: dict[str, bytes]
    changes: list[dict[str, Any]]  # docker diff: {"Path", "Kind"}
    seconds: float
    timed_out: bool
    started: float  # time.monotonic() just before start()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> dict[str, Any]:
        return json.loads(self.out["session/status.json"])

    @property
    def stream(self) -> list[dict[str, Any]]:
        found = []
        for line in self.out.get("stream.jsonl", b"").decode("utf-8", "replace").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    @property
    def result(self) -> dict[str, Any] | None:
        raw = self.out.get("result.json")
        return json.loads(raw) if raw else None

    @property
    def session_id(self) -> str:
        return self.out["session/id"].decode().strip()

    @property
    def transcript(self) -> bytes:
        return self.out["session/transcript.jsonl"]

    def describe(self) -> str:
        return (
            f"exit={self.exit_code} timed_out={self.timed_out}\n--- stdout ---\n"
            f"{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}\n"
            f"--- out ---\n{sorted(self.out)}"
        )


def _entry(
    tar: tarfile.TarFile, path: str, data: bytes | None, mode: int, link: str | None = None
) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.uid, info.gid, info.uname, info.gname = AGENT_UID, AGENT_GID, "agent", "agent"
    info.mode, info.mtime = mode, int(time.time())
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info)
    elif data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def resume_tar(resume: Resume) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _entry(tar, RESUME_DIR, None, 0o700)
        sid = resume.session_id
        _entry(
            tar, f"{RESUME_DIR}/session-id", sid.encode() if isinstance(sid, str) else sid, 0o600
        )
        if resume.transcript_link is not None:
            _entry(tar, f"{RESUME_DIR}/transcript.jsonl", None, 0o777, resume.transcript_link)
        else:
            _entry(tar, f"{RESUME_DIR}/transcript.jsonl", resume.transcript, 0o600)
    return buf.getvalue()


def run_session(
    client: docker.DockerClient,
    image: str,
    *,
    prompt: str,
    repo: Path,
    resume: Resume | None = None,
    gateway: MessageGateway | None = None,
    secret_env: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    during: Callable[[], None] | None = None,
    timeout: float = 180,
) -> SessionRun:
    """create (hardened like the runner's, but with a writable root so that `docker diff` shows
    any write outside the home) -> inputs -> start -> ``during()`` -> wait -> outputs -> remove.
    With a gateway: network none, its socket the only way out."""
    started_total = time.monotonic()
    container = client.containers.create(
        image,
        environment={"REPO_URL": f"file://{REPO_IN_CONTAINER}", **(env or {})},
        network_mode="none" if gateway is not None else "host",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        tmpfs={"/tmp": "rw,exec,nosuid,nodev,size=1g,mode=1777"},
        volumes={gateway.dir: {"bind": GATEWAY_MOUNT, "mode": "ro"}} if gateway else None,
        labels={"app": "claude-runner", "claude-runner.test": "1"},
        name=f"claude-runner-session-test-{uuid.uuid4().hex[:12]}",
        detach=True,
    )
    try:
        assert container.put_archive("/", input_tar(prompt, None, secret_env, repo))
        if resume is not None:
            assert container.put_archive("/", resume_tar(resume))
        started = time.monotonic()
        container.start()
        if during is not None:
            during()
        timed_out = False
        try:
            exit_code: int = container.wait(timeout=timeout)["StatusCode"]
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out = True
            container.stop(timeout=10)
            exit_code = container.wait(timeout=60)["StatusCode"]
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        chunks, _ = container.get_archive(OUT)
        out = _untar(chunks, "out/")
        changes = container.diff() or []
    finally:
        container.remove(force=True)
    return SessionRun(
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        out=out,
        changes=changes,
        seconds=time.monotonic() - started_total,
        timed_out=timed_out,
        started=started,
    )


def changed_outside_home(run: SessionRun) -> list[str]:
    """Paths the container changed outside /home/agent (its parents excepted)."""
    return [
        c["Path"]
        for c in run.changes
        if c["Path"] not in ("/home", "/home/agent") and not c["Path"].startswith("/home/agent/")
    ]
