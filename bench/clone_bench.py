"""Clone on the worker and put the tree into the container, vs clone inside the container.

A generated repository (about 50 MB of text in 5,000 files, incompressible content) is served by
the loopback TLS git server of the tests (`git http-backend`). Each round, same run, same image:

  worker:    hosting.git.repository_clone on the worker (askpass, egress check, pinned address;
             .git only, as the runner does) + create the container (network none) +
             tasks.run.worktree.tree_put + start it checking the files out (as the entrypoint does)
  container: create the container (network_mode host, for this benchmark only: it must reach
             the loopback server) + start `git clone` of the same URL inside it + wait

Both clone --depth 1 over https from the same server; both include create/start/wait/remove.
With --file both clone the same bare repository by file:// instead (the container gets it as a
read-only bind mount, network none): no server in the way, so the worker side's extra cost
(streaming the tree into the container) weighs more in the ratio.
Printed: medians, the ratio worker/container (goal <= 1.2), and the worker side's parts.
Needs the project's Docker engine and the test image (scripts/build-agent-images.sh test).
Run: .venv/bin/python bench/clone_bench.py [rounds] [--file]
"""

import base64
import io
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import docker
from _setup import django_setup, docker_host_default

docker_host_default()
django_setup()

from django.conf import settings  # noqa: E402

from hosting.git import repository_clone  # noqa: E402
from tasks.run.containers import AGENT_UID, APP_LABEL, docker_client  # noqa: E402
from tasks.run.worktree import tree_put  # noqa: E402
from tests.fakes.git_server import FakeGitServer  # noqa: E402

IMAGE = os.environ.get("CLAUDE_RUNNER_TEST_IMAGE", "claude-runner-agent:test")
FILES, FILE_BYTES, DIRS = 5000, 10_000, 50
# What the entrypoint does with a tree the runner put in (agent/README.md): check the files out.
CHECKOUT = ["sh", "-c", "git -C /home/agent/work reset --quiet --hard"]


def repository_generate(server: FakeGitServer) -> tuple[str, int]:
    files = {}
    for i in range(FILES):
        raw = os.urandom(FILE_BYTES * 3 // 4)
        text = base64.encodebytes(raw).decode()  # text lines, as incompressible as it gets
        files[f"pkg{i % DIRS:02d}/module_{i:04d}.txt"] = text
    server.repository_create("bench/big", private=False, files=files)
    size = sum(len(t) for t in files.values())
    return server.url("bench/big"), size


def worker_round(client: docker.DockerClient, url: str) -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-clone-"))
    t0 = time.perf_counter()
    # As the runner does: only .git is cloned and copied; the container checks the files out.
    cloned = repository_clone(url=url, branch="", token="", dest=scratch / "work", checkout=False)
    t1 = time.perf_counter()
    container = client.containers.create(
        IMAGE, entrypoint=CHECKOUT, network_mode="none", labels={"app": APP_LABEL}
    )
    try:
        tree_put(container=container, src=cloned.path, uid=AGENT_UID)
        t2 = time.perf_counter()
        container.start()
        assert container.wait()["StatusCode"] == 0
        t3 = time.perf_counter()
    finally:
        container.remove(force=True, v=True)
    t4 = time.perf_counter()
    shutil.rmtree(scratch)
    return {"total": t4 - t0, "clone": t1 - t0, "put": t2 - t1, "run": t3 - t2}


def container_round(client: docker.DockerClient, url: str, ca: bytes) -> float:
    t0 = time.perf_counter()
    local = url.startswith("file://")
    bare = url.removeprefix("file://")
    container = client.containers.create(
        IMAGE,
        entrypoint=["git", "clone", "-q", "--depth", "1", "--single-branch", "--no-tags"],
        command=[url, "/home/agent/work"],
        environment={"GIT_SSL_CAINFO": "/home/agent/ca.pem"},
        # host: the loopback server must be reachable (this benchmark only); none for file://
        network_mode="none" if local else "host",
        volumes={bare: {"bind": bare, "mode": "ro"}} if local else None,
        labels={"app": APP_LABEL},
    )
    try:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("ca.pem")
            info.size, info.uid, info.gid = len(ca), 1000, 1000
            tar.addfile(info, io.BytesIO(ca))
        container.put_archive("/home/agent", buffer.getvalue())
        container.start()
        code = container.wait()["StatusCode"]
        if code != 0:
            raise SystemExit(f"clone in the container failed: {container.logs().decode()}")
    finally:
        container.remove(force=True, v=True)
    return time.perf_counter() - t0


def tree_check(client: docker.DockerClient, url: str) -> None:
    """Once, outside the timing: the tree really is in the container, with its history."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-check-"))
    cloned = repository_clone(url=url, branch="", token="", dest=scratch / "work", checkout=False)
    container = client.containers.create(
        IMAGE,
        entrypoint=[
            "sh",
            "-c",
            f"{CHECKOUT[2]} && cd work && git log --oneline | wc -l && find . -type f | wc -l",
        ],
        network_mode="none",
    )
    try:
        tree_put(container=container, src=cloned.path, uid=AGENT_UID)
        container.start()
        container.wait()
        print(f"  in the container: {container.logs().decode().split()} (commits, files)")
    finally:
        container.remove(force=True, v=True)
        shutil.rmtree(scratch)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = int(args[0]) if args else 5
    client = docker_client()
    with FakeGitServer() as server:
        settings.HOSTING_CA_BUNDLE = str(server.ca_file)
        settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = [server.host_port]
        t = time.perf_counter()
        url, size = repository_generate(server)
        if "--file" in sys.argv:
            settings.AGENT_ALLOW_LOCAL_REPOS = True
            url = f"file://{server.bare_path('bench/big')}"
        print(f"source: {url.split('/bench')[0]} (clone --depth 1 on both sides)")
        took = time.perf_counter() - t
        print(f"repository: {FILES} files, {size / 1e6:.1f} MB, made in {took:.1f} s")
        tree_check(client, url)
        ca = server.ca_file.read_bytes()
        worker_round(client, url)  # warm-up of both paths (page cache, image layers)
        container_round(client, url, ca)
        worker, inside = [], []
        for i in range(rounds):
            if i % 2:
                inside.append(container_round(client, url, ca))
                worker.append(worker_round(client, url))
            else:
                worker.append(worker_round(client, url))
                inside.append(container_round(client, url, ca))
    med = {k: statistics.median(r[k] for r in worker) for k in worker[0]}
    inside_med = statistics.median(inside)
    print(f"rounds: {rounds}")
    print(
        f"worker clone + tree into container: {med['total']:.2f} s median "
        f"(clone {med['clone']:.2f}, put {med['put']:.2f}, start+wait {med['run']:.2f})"
    )
    print(f"clone inside the container:         {inside_med:.2f} s median")
    ratio = med["total"] / inside_med
    print(
        f"ratio worker/container: {ratio:.2f} (goal <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
