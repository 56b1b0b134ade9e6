"""What the container hardening and the gateway relay cost per task, as ratios to a plain run.

Three ways to run the same fake-claude task (create + put_archive + start + wait + remove),
interleaved so drift on the machine hits all alike:
  plain     the SDK's defaults, network none (no hardening, no relay)
  hardened  tasks.run.containers.container_create_kwargs: read-only root, home volume, /tmp tmpfs,
            no capabilities, no-new-privileges, pids limit (volume removed with the container)
  + relay   hardened, plus a gateway socket mounted: the entrypoint starts socat and waits
            until it listens (the socket is a stand-in server; the fake claude sends nothing)
Needs the project's Docker engine and the test image (scripts/build-agent-images.sh test).
Run: .venv/bin/python bench/container_hardening_bench.py [N]
"""

import statistics
import sys
import time

from _setup import ROOT, django_setup, docker_host_default

docker_host_default()
django_setup()
sys.path.insert(0, str(ROOT))

from task_runner_bench import bare_repo  # noqa: E402

from tasks.run.archives import InputFile, inputs_tar  # noqa: E402
from tasks.run.containers import (  # noqa: E402
    AGENT_UID,
    APP_LABEL,
    HOME,
    ContainerSpec,
    container_create_kwargs,
    docker_client,
)
from tests.fakes.socket_recorder import SocketRecorder  # noqa: E402

IMAGE = "claude-runner-agent:test"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    repo = bare_repo()
    client = docker_client()
    files = [
        InputFile(f"{HOME}/task/prompt.txt", b"bench", 0o600),
        InputFile(f"{HOME}/task/secret-env/ANTHROPIC_API_KEY", b"sk-ant-api03-bench", 0o600),
    ]
    inputs = inputs_tar(files, home=HOME, uid=AGENT_UID)
    env = {"REPO_URL": f"file://{repo}", "REPO_BRANCH": ""}
    labels = {"app": APP_LABEL, "claude-runner.bench": "1"}
    mounts = {repo: {"bind": repo, "mode": "ro"}}
    gateway = SocketRecorder().start()

    def spec(gateway_dir: str | None) -> ContainerSpec:
        return ContainerSpec(
            image=IMAGE,
            env=env,
            files=files,
            labels=labels,
            name=f"claude-runner-bench-{time.monotonic_ns()}",
            timeout_seconds=60,
            volumes=mounts,
            gateway_dir=gateway_dir,
        )

    def plain() -> None:
        container = client.containers.create(
            IMAGE, environment=env, labels=labels, network_mode="none", volumes=mounts, detach=True
        )
        container.put_archive(HOME, inputs)
        container.start()
        assert container.wait()["StatusCode"] == 0
        container.remove(force=True)

    def hardened(gateway_dir: str | None = None) -> None:
        container = client.containers.create(**container_create_kwargs(spec(gateway_dir)))
        container.put_archive(HOME, inputs)
        container.start()
        assert container.wait()["StatusCode"] == 0
        container.remove(force=True, v=True)

    runs = {
        "plain": plain,
        "hardened": hardened,
        "hardened + relay": lambda: hardened(gateway.dir),
    }
    try:
        for fn in runs.values():  # warm every path once
            fn()
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(n):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        gateway.stop()
    base = statistics.median(times["plain"])
    print(f"runs: {n} each, interleaved; medians (create+put_archive+start+wait+remove)")
    for name, values in times.items():
        m = statistics.median(values)
        print(f"{name:17} {m:.3f} s  ratio {m / base:.2f}x  overhead {1000 * (m - base):+.0f} ms")


if __name__ == "__main__":
    main()
