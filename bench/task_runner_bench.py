"""The task runner's overhead per task, as a ratio to the bare Docker SDK doing the same run.

Baseline: create + put_archive(inputs) + start + wait + remove of the same container with the
SDK directly. Runner: tasks.run.runner.task_run for a queued task (database rows, auth choice,
streamed log, results read back with get_archive). Same image (fake claude), same inputs.
Needs the project's Docker engine and the test image (scripts/build-agent-images.sh test).
Run: .venv/bin/python bench/task_runner_bench.py [N]
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import django_setup, docker_host_default

docker_host_default()
django_setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from accounts.selectors import preferences_get  # noqa: E402
from tasks.models import CodingTask  # noqa: E402
from tasks.run.archives import InputFile, inputs_tar  # noqa: E402
from tasks.run.containers import AGENT_UID, APP_LABEL, HOME, docker_client  # noqa: E402
from tasks.run.runner import task_run  # noqa: E402

IMAGE = "claude-runner-agent:test"


def bare_repo() -> str:
    base = Path(tempfile.mkdtemp(prefix="bench-repo-"))
    src, bare = base / "src", base / "repo.git"
    src.mkdir()
    (src / "README.md").write_text("# bench\n")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(src)], check=True)
    subprocess.run([*git, "-C", str(src), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(src), "commit", "-q", "-m", "init"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True)
    return str(bare)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    settings.AGENT_IMAGE = IMAGE
    settings.AGENT_NETWORK_MODE = "none"
    settings.AGENT_ALLOW_LOCAL_REPOS = True
    settings.AGENT_MEMORY_LIMIT = ""
    settings.AGENT_CPUS = 0
    repo = bare_repo()
    key = "sk-ant-api03-bench-key-000000000000"
    user = get_user_model().objects.create_user("bench")
    prefs = preferences_get(user=user)
    prefs.api_key, prefs.api_key_last4 = key, key[-4:]
    prefs.save()
    client = docker_client()
    inputs = inputs_tar(
        [
            InputFile("/home/agent/task/prompt.txt", b"bench", 0o600),
            InputFile("/home/agent/task/secret-env/ANTHROPIC_API_KEY", key.encode(), 0o600),
        ],
        home=HOME,
        uid=AGENT_UID,
    )

    def direct() -> None:
        container = client.containers.create(
            IMAGE,
            environment={"REPO_URL": f"file://{repo}", "REPO_BRANCH": ""},
            labels={"app": APP_LABEL},
            network_mode="none",
            volumes={repo: {"bind": repo, "mode": "ro"}},
            detach=True,
        )
        container.put_archive("/home/agent", inputs)  # inputs_tar: paths below the home
        container.start()
        assert container.wait()["StatusCode"] == 0
        container.remove(force=True)

    def runner() -> None:
        task = CodingTask.objects.create(owner=user, repo_url=f"file://{repo}", prompt="bench")
        task_run(task_id=task.pk)
        task.refresh_from_db()
        assert task.status == "succeeded", task.error_message

    direct()
    runner()  # warm both paths (image layers, imports, connections)
    times: dict[str, list[float]] = {"direct": [], "runner": []}
    for _ in range(n):  # interleaved, so drift on the machine hits both alike
        for name, fn in (("direct", direct), ("runner", runner)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    d, r = statistics.median(times["direct"]), statistics.median(times["runner"])
    print(f"runs: {n} each, interleaved; medians")
    print(f"SDK directly (create+put_archive+start+wait+remove): {d:.3f} s")
    print(f"task runner (task_run, same container):              {r:.3f} s")
    print(f"ratio: {r / d:.2f}x (aim: 1.3 or below); overhead {1000 * (r - d):.0f} ms/task")


if __name__ == "__main__":
    main()
