"""The task container as the runner creates it (tasks.run.containers): hardened, no network, the
gateway socket its only way out. Runs the fake-claude and the probe images; the gateway here is a
stand-in that records and forwards nothing (tests/fakes/socket_recorder.py)."""

from __future__ import annotations

import stat
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest

from gateway.runtime import placeholder_new
from oauth_tokens.models import AuthMethod, AuthSource
from oauth_tokens.services import AuthResolution
from tasks.models import CodingTask
from tasks.run.agent_user import agent_uid_for_task
from tasks.run.containers import (
    AGENT_UID,
    GATEWAY_MOUNT,
    HOME,
    HOME_VOLUME,
    TASK_DIR,
    ContainerOutcome,
    ContainerSpec,
    InputFile,
    container_run,
)
from tasks.run.gateway import GATEWAY_SOCKET_NAME, task_gateway_open
from tasks.run.log import TaskLog
from tests.agent_image.hardened import run_hardened
from tests.agent_image.helpers import make_bare_repo
from tests.agent_image.probe import ProbeReport
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.fakes.socket_recorder import SocketRecorder

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

USER_SECRET = "user-own-secret-value-for-the-probe-7"


@dataclass
class Run:
    outcome: ContainerOutcome
    output: str
    inspect: dict[str, Any] = field(default_factory=dict)

    @property
    def diff(self) -> str:
        return self.outcome.outputs.get("diff.patch", b"").decode("utf-8", "replace")

    def describe(self) -> str:
        return f"exit={self.outcome.exit_code}\n{self.output[-4000:]}"


def run_task_container(
    client: docker.DockerClient,
    image: str,
    repo: Path,
    *,
    prompt: str,
    gateway_dir: str | None = None,
    env: dict[str, str] | None = None,
    secret_env: dict[str, str] | None = None,
    uid: int = AGENT_UID,
) -> Run:
    files = [InputFile(f"{TASK_DIR}/prompt.txt", prompt.encode())]
    files += [
        InputFile(f"{TASK_DIR}/secret-env/{name}", value.encode())
        for name, value in (secret_env or {}).items()
    ]
    spec = ContainerSpec(
        image=image,
        env={"REPO_URL": f"file://{repo}", "REPO_BRANCH": "", **(env or {})},
        files=files,
        labels={"app": "claude-runner", "claude-runner.test": "1"},
        name=f"claude-runner-test-{uuid.uuid4().hex[:12]}",
        timeout_seconds=120,
        volumes={str(repo): {"bind": str(repo), "mode": "ro"}},
        gateway_dir=gateway_dir,
        uid=uid,
    )
    output = bytearray()
    inspected: dict[str, Any] = {}

    def started(container_id: str) -> None:
        inspected.update(client.api.inspect_container(container_id))

    outcome = container_run(
        client=client,
        spec=spec,
        on_started=started,
        on_output=output.extend,
        should_cancel=lambda: False,
        max_output_bytes=8 * 1024 * 1024,
    )
    return Run(outcome, output.decode("utf-8", "replace"), inspected)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    bare = make_bare_repo(tmp_path, {"README.md": "# demo\n"})
    bare.chmod(0o755)
    return bare


def test_the_container_is_hardened_and_its_home_goes_with_it(
    docker_client: docker.DockerClient, test_image: str, repo: Path
) -> None:
    run = run_task_container(
        docker_client,
        test_image,
        repo,
        prompt="REPORT_AUTH notes",
        secret_env={"ANTHROPIC_API_KEY": "sk-ant-api03-hardening-test-key"},
    )
    assert run.outcome.exit_code == 0, run.describe()
    host = run.inspect["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["PidsLimit"] == 512
    assert host["NetworkMode"] == "none"
    assert "/tmp" in host["Tmpfs"]
    # The engine keeps at most 2 x 50 MB of its output, however much the agent prints.
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": "50m", "max-file": "2"},
    }
    assert run.inspect["Config"]["User"] == "1000:1000"
    # The writable home is in an anonymous volume, filled from the image and removed with it.
    home = next(m for m in run.inspect["Mounts"] if m["Destination"] == HOME_VOLUME)
    assert home["Type"] == "volume"
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(home["Name"])
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(run.inspect["Id"])
    # Inputs landed (put_archive into the home), the agent worked, the diff came back.
    assert "+REPORT_AUTH notes" in run.diff
    # No gateway mounted: no relay and no proxy settings (the contract before the gateway).
    assert '"ANTHROPIC_BASE_URL"' not in run.output
    assert '"HTTPS_PROXY"' not in run.output


def test_the_probe_finds_only_the_gateway_as_a_way_out(
    docker_client: docker.DockerClient, probe_image: str, repo: Path
) -> None:
    with SocketRecorder() as gateway, FakeAnthropicAPI() as host_listener:
        run = run_task_container(
            docker_client,
            probe_image,
            repo,
            prompt=(
                f"PROBE_DIRECT:{host_listener.port} PROBE_CONNECT:not-allowed.invalid:443 "
                "PROBE_HTTP:http://plain.invalid/x"
            ),
            gateway_dir=gateway.dir,
            secret_env={"MY_TOKEN": USER_SECRET},
        )
        seen = gateway.requests
        host_requests = host_listener.requests
        host_port = host_listener.port
    assert run.outcome.exit_code == 0, run.describe()
    report = ProbeReport.parse(run.diff)
    assert report.found, run.describe()
    assert ProbeReport.parse(run.output).blob == report.blob  # the log carries the same

    # The process: uid 1000, no capabilities, no new privileges, read-only but for its dirs.
    assert report.sys["uid"] == "1000"
    assert int(report.sys["capeff"], 16) == 0
    assert report.sys["nonewprivs"] == "1"
    assert report.writable == {
        "/": False,
        "/etc": False,
        "/usr": False,
        "/usr/local/bin": False,
        "/run": False,
        GATEWAY_MOUNT: False,
        "/tmp": True,
        HOME: True,
        f"{HOME}/work": True,
    }

    # Its environment points every client at the relay, whatever the inputs said.
    env = report.env()
    relay = "http://127.0.0.1:8080"
    for name in ("ANTHROPIC_BASE_URL", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        assert env[name] == relay, name
    assert env["NO_PROXY"] == env["no_proxy"] == "127.0.0.1,localhost"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    # The probe finds what is there (the user's own secret is theirs to use)...
    assert env["MY_TOKEN"] == USER_SECRET
    assert report.where(USER_SECRET)
    # ...and the secret-env files are gone before the agent ran.
    assert not any(label.startswith(f"{TASK_DIR}/secret-env") for _, label in report.found)

    # The host's loopback is not the container's: nothing reached the listener.
    assert report.net("direct", f"127.0.0.1:{host_port}")[0] == "refused"
    assert host_requests == []
    # Everything else went to the gateway socket, through the relay.
    verdict, detail = report.net("connect", "not-allowed.invalid:443")
    assert verdict == "refused"
    assert "403" in detail
    assert ("CONNECT", "not-allowed.invalid:443") in [(m, p) for m, p, _ in seen]
    assert ("GET", "http://plain.invalid/x") in [(m, p) for m, p, _ in seen]
    assert report.net("http", "http://plain.invalid/x")[0] == "ok"


def test_a_bad_relay_port_stops_before_the_agent(
    docker_client: docker.DockerClient, probe_image: str, repo: Path
) -> None:
    with SocketRecorder() as gateway:
        run = run_task_container(
            docker_client,
            probe_image,
            repo,
            prompt="hello",
            gateway_dir=gateway.dir,
            env={"AGENT_GATEWAY_PORT": "99999"},
        )
    assert run.outcome.exit_code == 4, run.describe()
    assert b"AGENT_GATEWAY_PORT is not a port number" in run.outcome.outputs["result.json"]
    assert run.diff == ""


def test_a_required_gateway_that_is_not_mounted_stops_before_the_agent(
    docker_client: docker.DockerClient, probe_image: str, repo: Path, tmp_path: Path
) -> None:
    # What a remote engine does: the bind mount finds an empty folder on its own host.
    empty = tmp_path / "no-socket-here"
    empty.mkdir()
    run = run_task_container(
        docker_client,
        probe_image,
        repo,
        prompt="hello",
        gateway_dir=str(empty),
        env={"AGENT_GATEWAY_REQUIRED": "1"},
    )
    assert run.outcome.exit_code == 4, run.describe()
    assert b"must be on the Docker engine's host" in run.outcome.outputs["result.json"]
    assert "PROBE" not in run.output  # the agent never ran


def test_each_task_runs_as_a_uid_of_its_own_that_owns_its_home(
    docker_client: docker.DockerClient, probe_image: str, repo: Path
) -> None:
    uid = agent_uid_for_task(task_id=4242)
    assert uid != AGENT_UID
    assert agent_uid_for_task(task_id=4243) != uid
    run = run_task_container(docker_client, probe_image, repo, prompt="hello", uid=uid)
    assert run.outcome.exit_code == 0, run.describe()
    assert run.inspect["Config"]["User"] == f"{uid}:{uid}"
    report = ProbeReport.parse(run.diff)
    assert report.found, run.describe()
    assert report.sys["uid"] == str(uid)
    assert report.writable[HOME] is True
    assert report.writable[f"{HOME}/work"] is True
    assert report.writable["/"] is False


SOCKET_TRY = (
    f"if socat -u OPEN:/dev/null UNIX-CONNECT:{GATEWAY_MOUNT}/{GATEWAY_SOCKET_NAME}; "
    "then echo CONNECTED; else echo REFUSED; fi"
)


@pytest.mark.django_db
def test_only_the_tasks_uid_reaches_its_gateway_socket(
    docker_client: docker.DockerClient, test_image: str, user: Any
) -> None:
    task = CodingTask.objects.create(owner=user, repo_url="https://github.com/a/b", prompt="p")
    uid = agent_uid_for_task(task_id=task.pk)
    root = Path(tempfile.mkdtemp(prefix="gw-", dir="/tmp"))  # a socket path is short
    root.chmod(0o711)
    auth = AuthResolution(
        method=AuthMethod.API_KEY,
        source=AuthSource.ENVIRONMENT,
        reason="test",
        api_key="sk-ant-api03-socket-owner-test",
    )
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=9999)
    try:
        with task_gateway_open(task, root, auth, placeholder_new(), log, uid) as (_, folder):
            found = folder.stat()
            assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (uid, uid, 0o700)
            socket = (folder / GATEWAY_SOCKET_NAME).stat()
            assert (socket.st_uid, stat.S_IMODE(socket.st_mode)) == (uid, 0o600)
            mounted = {str(folder): {"bind": GATEWAY_MOUNT, "mode": "ro"}}
            runs = {
                who: run_hardened(
                    docker_client, test_image, script=SOCKET_TRY, volumes=mounted, uid=who
                )
                for who in (uid, uid + 1, AGENT_UID)
            }
    finally:
        root.rmdir()
    assert "CONNECTED" in runs[uid].output, runs[uid].describe()
    for other in (uid + 1, AGENT_UID):
        assert "REFUSED" in runs[other].output, runs[other].describe()
    assert "open to every local user" not in log.text
