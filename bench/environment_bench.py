"""Environments: time from a task's start to the agent's first model request, with an
environment's setup (cold: the setup script installs packages), from its cache (warm: a hit,
nothing to run), and without an environment (bare: the same image, the same repository), in
the same run. Goal: warm at most 1.5x bare. Also prints the setup time and the snapshot size.

The universal image runs the real CLI against the fake model API on 127.0.0.1 (through the
task's gateway); setup installs a few packages with pip and npm from loopback registries.
Needs the project's Docker engine and claude-runner-agent:universal-2.1.332
(scripts/build-agent-images.sh universal).
Run: .venv/bin/python bench/environment_bench.py [ROUNDS]
"""

import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _setup import ROOT, django_setup, docker_host_default

docker_host_default()
django_setup()
sys.path.insert(0, str(ROOT))

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from accounts.selectors import preferences_get  # noqa: E402
from environments.models import TaskEnvironment  # noqa: E402
from environments.services import (  # noqa: E402
    EnvironmentInput,
    environment_cache_reset,
    environment_save,
    task_environment_choose,
)
from tasks.models import CodingTask  # noqa: E402
from tasks.run.runner import task_run  # noqa: E402
from tests.agent_image.helpers import make_bare_repo  # noqa: E402
from tests.fakes.anthropic_api import FakeAnthropicAPI  # noqa: E402
from tests.fakes.package_registry import (  # noqa: E402
    PlainPackageRegistry,
    npm_tarball,
    python_wheel,
)

IMAGE = "claude-runner-agent:universal-2.1.332"
PACKAGES = ["alpha", "beta", "gamma", "delta"]
SETUP = """set -e
unset NO_PROXY no_proxy
python3 -m venv .venv
.venv/bin/pip install -q --index-url "$INDEX_URL" --trusted-host 127.0.0.1 {wheels}
npm install --registry "$NPM_REGISTRY"
"""


def first_request_seconds(api: FakeAnthropicAPI, run: Callable[[], object]) -> float:
    """Run a task; seconds from its start to the fake API's first model request."""
    api.clear()
    seen: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if api.messages_requests():
                seen["at"] = time.perf_counter()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    start = time.perf_counter()
    watcher.start()
    run()
    done.set()
    watcher.join()
    if "at" not in seen:
        raise RuntimeError("the agent made no model request")
    return seen["at"] - start


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    wheels = [python_wheel(n, "1.0", {f"{n}/__init__.py": f"NAME = '{n}'\n"}) for n in PACKAGES]
    tarballs = [
        npm_tarball(f"js-{n}", "1.0.0", {"index.js": "module.exports = 1;\n"}) for n in PACKAGES
    ]
    tmp = Path(tempfile.mkdtemp(prefix="env-bench-"))
    dependencies = ", ".join(f'"js-{n}": "^1.0.0"' for n in PACKAGES)
    repo = "file://" + str(
        make_bare_repo(
            tmp,
            {
                ".gitignore": ".venv/\nnode_modules/\n",
                "package.json": f'{{"name": "b", "dependencies": {{{dependencies}}}}}\n',
                "README.md": "# bench\n",
            },
        )
    )
    with PlainPackageRegistry([*wheels, *tarballs]) as registry, FakeAnthropicAPI() as api:
        settings.AGENT_IMAGE = IMAGE
        settings.ANTHROPIC_API_URL = api.url
        settings.AGENT_NETWORK_MODE = "none"
        settings.AGENT_ALLOW_LOCAL_REPOS = True
        settings.AGENT_LOCAL_REPOS_ROOT = tempfile.gettempdir()
        settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = [f"127.0.0.1:{registry.port}"]
        settings.AGENT_EXTRA_ENV = {"DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1"}
        settings.AGENT_ENV_CACHE_DIR = str(tmp / "cache")
        settings.AGENT_GATEWAY_SOCKET_ROOT = tempfile.mkdtemp(prefix="crgw-", dir="/tmp")
        user = get_user_model().objects.create_user("bench")
        key = "sk-ant-api03-bench-environment-key-0000"
        prefs = preferences_get(user=user)
        prefs.api_key, prefs.api_key_last4 = key, key[-4:]
        prefs.save()
        environment = environment_save(
            owner=user,
            data=EnvironmentInput(
                name="bench",
                image=IMAGE,
                setup_script=SETUP.format(wheels=" ".join(PACKAGES)),
                variables=f"INDEX_URL={registry.pip_index_url}\nNPM_REGISTRY={registry.npm_url}",
            ),
        )

        def task(choice: str) -> CodingTask:
            made = CodingTask.objects.create(owner=user, repo_url=repo, prompt="bench")
            task_environment_choose(task_id=made.pk, owner=user, repo_url=repo, choice=choice)
            task_run(task_id=made.pk)
            made.refresh_from_db()
            assert made.status == "succeeded", (made.error_message, made.log[-2000:])
            return made

        times: dict[str, list[float]] = {"bare": [], "cold": [], "warm": []}
        setup_seconds: list[float] = []
        snapshot = 0
        first_request_seconds(api, lambda: task("none"))  # warm up image layers and imports
        for _ in range(rounds):  # interleaved, so drift on the machine hits all alike
            environment_cache_reset(environment=environment)
            times["cold"].append(first_request_seconds(api, lambda: task(str(environment.pk))))
            run = TaskEnvironment.objects.filter(cache="miss").latest("pk")
            setup_seconds.append(run.setup_seconds or 0.0)
            snapshot = run.snapshot_bytes or 0
            times["warm"].append(first_request_seconds(api, lambda: task(str(environment.pk))))
            times["bare"].append(first_request_seconds(api, lambda: task("none")))
    bare, cold, warm = (statistics.median(times[k]) for k in ("bare", "cold", "warm"))
    print(f"rounds: {rounds}, interleaved; medians; image {IMAGE}")
    print(f"bare (no environment):         {bare:.2f} s to the first model request")
    print(f"cold (setup: {len(PACKAGES)} pip + {len(PACKAGES)} npm packages): {cold:.2f} s")
    print(f"warm (cache hit):              {warm:.2f} s")
    print(f"warm / bare: {warm / bare:.2f}x (goal: 1.5 or below); cold / bare: {cold / bare:.2f}x")
    print(f"setup time (median): {statistics.median(setup_seconds):.2f} s")
    print(f"snapshot size: {snapshot / 1024**2:.1f} MiB")


if __name__ == "__main__":
    main()
