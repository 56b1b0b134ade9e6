"""Run one agent container by the contract of agent/README.md, with the docker SDK only.

run = run_agent(client, "claude-runner-agent:test", prompt="...",
                repo=make_bare_repo(tmp_path, {"README.md": "hi\\n"}),
                credentials={"claudeAiOauth": {...}}, secret_env={...}, env={...})
run.exit_code, run.result, run.out["diff.patch"], run.inspect_json, ...
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import requests

HOME = "/home/agent"
TASK = f"{HOME}/task"
OUT = f"{HOME}/out"
CREDENTIALS = f"{HOME}/.claude/.credentials.json"
REPO_IN_CONTAINER = f"{TASK}/repo.git"
AGENT_UID = AGENT_GID = 1000


@dataclass
class AgentRun:
    exit_code: int  # the container's exit code (after a timeout: after docker stop)
    stdout: str
    stderr: str
    out: dict[str, bytes]  # files of /home/agent/out by relative name
    inspect: dict[str, Any]  # docker inspect of the container, taken before removal
    credentials_after: bytes | None
    seconds: float
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def inspect_json(self) -> str:
        return json.dumps(self.inspect)

    def text(self, name: str) -> str:
        return self.out.get(name, b"").decode("utf-8", "replace")

    def json(self, name: str) -> Any:
        return json.loads(self.out[name])

    @property
    def result(self) -> dict[str, Any] | None:
        return json.loads(self.out["result.json"]) if self.out.get("result.json") else None

    @property
    def stream(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.text("stream.jsonl").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
        return lines

    def describe(self) -> str:
        """For assertion messages."""
        return (
            f"exit={self.exit_code} timed_out={self.timed_out}\n--- stdout ---\n"
            f"{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}\n"
            f"--- out ---\n{sorted(self.out)}"
        )


def make_bare_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    """A bare git repo (one commit with ``files``) in tmp_path/repo.git."""
    src = tmp_path / "repo-src"
    bare = tmp_path / "repo.git"
    src.mkdir()
    for name, content in files.items():
        p = src / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(src)], check=True)
    subprocess.run([*git, "-C", str(src), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(src), "commit", "-q", "-m", "initial"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True)
    return bare


def _add_bytes(tar: tarfile.TarFile, path: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size = len(data)
    info.mode = mode
    info.uid, info.gid = AGENT_UID, AGENT_GID
    info.uname = info.gname = "agent"
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, path: str, mode: int) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.uid, info.gid = AGENT_UID, AGENT_GID
    info.uname = info.gname = "agent"
    info.mtime = int(time.time())
    tar.addfile(info)


def _as_agent(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid, info.gid = AGENT_UID, AGENT_GID
    info.uname = info.gname = "agent"
    return info


def input_tar(
    prompt: str,
    credentials: dict[str, Any] | str | bytes | None = None,
    secret_env: dict[str, str] | None = None,
    repo: Path | None = None,
    files: dict[str, bytes] | None = None,
) -> bytes:
    """The inputs of the contract as one tar for ``put_archive("/", tar)``: full paths,
    explicit directory entries, everything owned by 1000:1000, secrets mode 0600. ``files``:
    more files by full path below the home (executable, in folders that exist or come first)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add_dir(tar, TASK, 0o700)
        _add_bytes(tar, f"{TASK}/prompt.txt", prompt.encode(), 0o600)
        if credentials is not None:
            data = (
                credentials
                if isinstance(credentials, bytes)
                else credentials.encode()
                if isinstance(credentials, str)
                else json.dumps(credentials).encode()
            )
            _add_dir(tar, f"{HOME}/.claude", 0o700)
            _add_bytes(tar, CREDENTIALS, data, 0o600)
        if secret_env:
            _add_dir(tar, f"{TASK}/secret-env", 0o700)
            for name, value in secret_env.items():
                _add_bytes(tar, f"{TASK}/secret-env/{name}", value.encode(), 0o600)
        if repo is not None:
            tar.add(str(repo), arcname=REPO_IN_CONTAINER.lstrip("/"), filter=_as_agent)
        for path, data in (files or {}).items():
            _add_dir(tar, path.rsplit("/", 1)[0], 0o755)
            _add_bytes(tar, path, data, 0o755)
    return buf.getvalue()


def _untar(chunks: Any, strip: str) -> dict[str, bytes]:
    data = b"".join(chunks)
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name
            name = name[len(strip) :] if name.startswith(strip) else name
            f = tar.extractfile(member)
            files[name] = f.read() if f else b""
    return files


def run_agent(
    client: docker.DockerClient,
    image: str,
    *,
    prompt: str,
    repo: Path | None = None,
    repo_url: str | None = None,
    repo_branch: str = "",
    credentials: dict[str, Any] | str | bytes | None = None,
    secret_env: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
    network_mode: str = "host",
    timeout: float = 180,
    stop_grace: int = 15,
) -> AgentRun:
    """create -> put_archive inputs -> start -> wait -> collect /home/agent/out -> remove."""
    full_env = {
        "REPO_URL": repo_url or f"file://{REPO_IN_CONTAINER}",
        "REPO_BRANCH": repo_branch,
        **({"CLAUDE_USE_OAUTH": "1"} if credentials is not None else {}),
        **(env or {}),
    }
    started = time.monotonic()
    container = client.containers.create(
        image,
        environment=full_env,
        network_mode=network_mode,
        labels={"app": "claude-runner", "claude-runner.test": "1"},
        detach=True,
    )
    try:
        assert container.put_archive("/", input_tar(prompt, credentials, secret_env, repo, files))
        container.start()
        timed_out = False
        try:
            exit_code: int = container.wait(timeout=timeout)["StatusCode"]
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            # Graceful: SIGTERM, the entrypoint stops the agent and still writes
            # /home/agent/out (diff of what was done so far); SIGKILL after stop_grace.
            timed_out = True
            container.stop(timeout=stop_grace)
            exit_code = container.wait(timeout=60)["StatusCode"]
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        try:
            chunks, _ = container.get_archive(OUT)
            out = _untar(chunks, "out/")
        except docker.errors.NotFound:
            out = {}
        try:
            chunks, _ = container.get_archive(CREDENTIALS)
            creds = _untar(chunks, "")
            credentials_after = next(iter(creds.values()), None)
        except docker.errors.NotFound:
            credentials_after = None
        assert container.id
        inspect = client.api.inspect_container(container.id)
    finally:
        container.remove(force=True)
    return AgentRun(
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        out=out,
        inspect=inspect,
        credentials_after=credentials_after,
        seconds=time.monotonic() - started,
        timed_out=timed_out,
    )
