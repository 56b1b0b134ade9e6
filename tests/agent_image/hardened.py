"""Run a shell script in an agent image under the runner's own hardening (tasks.run.containers:
read-only root, no capabilities, no new privileges, uid 1000, the home a fresh volume, /tmp a
tmpfs, no network unless asked), with a project put into the home first, as the runner puts a
task's inputs there.

    run = run_hardened(client, image, script="cd work && make", files={"work/Makefile": "..."})
    run.exit_code, run.output
"""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import docker

from tasks.run.containers import HOME, ContainerSpec, container_create_kwargs

AGENT_UID = AGENT_GID = 1000


@dataclass
class HardenedRun:
    exit_code: int
    output: str  # stdout and stderr, interleaved
    inspect: dict[str, Any]

    def describe(self) -> str:
        return f"exit={self.exit_code}\n{self.output[-6000:]}"


def home_tar(files: Mapping[str, str | bytes]) -> bytes:
    """The files (paths relative to the home) with their folders, all owned by the agent user;
    a path ending in .sh is executable."""
    buffer = io.BytesIO()
    now = int(time.time())
    made: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, content in files.items():
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in made:
                    made.add(folder)
                    tar.addfile(_info(folder, tarfile.DIRTYPE, 0o755, 0, now))
            data = content.encode() if isinstance(content, str) else content
            mode = 0o755 if path.endswith(".sh") else 0o644
            tar.addfile(_info(path, tarfile.REGTYPE, mode, len(data), now), io.BytesIO(data))
    return buffer.getvalue()


def _info(name: str, kind: bytes, mode: int, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, mtime
    info.uid, info.gid, info.uname, info.gname = AGENT_UID, AGENT_GID, "agent", "agent"
    return info


def run_hardened(
    client: docker.DockerClient,
    image: str,
    *,
    script: str,
    files: Mapping[str, str | bytes] | None = None,
    env: dict[str, str] | None = None,
    network_mode: str = "none",
    timeout: float = 300,
    volumes: dict[str, dict[str, str]] | None = None,
    uid: int = AGENT_UID,
) -> HardenedRun:
    """``bash -c script`` as ``uid`` (the image's 1000 unless given) in ``image``, created with the
    runner's own arguments."""
    spec = ContainerSpec(
        image=image,
        env=env or {},
        files=[],
        labels={"app": "claude-runner", "claude-runner.test": "1"},
        name=f"claude-runner-test-{uuid.uuid4().hex[:12]}",
        timeout_seconds=timeout,
        network_mode=network_mode,
        volumes=volumes or {},
        uid=uid,
    )
    container = client.containers.create(
        **container_create_kwargs(spec), entrypoint=["/bin/bash", "-c", script]
    )
    try:
        if files:
            assert container.put_archive(HOME, home_tar(files))
        container.start()
        exit_code = int(container.wait(timeout=timeout)["StatusCode"])
        output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        assert container.id
        inspect = client.api.inspect_container(container.id)
    finally:
        container.remove(force=True, v=True)
    return HardenedRun(exit_code, output, inspect)
