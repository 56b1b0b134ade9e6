"""How much later a follow-up's agent starts than a fresh task's, through the whole product.

From "Continue" (tasks.follow_ups.task_continue, which queues the task; the test settings run
it at once, in this process: clone, the parent's commits read in, the conversation's transcript
of about 1 MB decrypted and put into the container, the gateway, the entrypoint's cleaning,
--resume) to the first /v1/messages request the fake Anthropic API receives, against the same
for a fresh task (tasks.services.task_create). The real CLI (the cli image), no network but the
task's gateway; the fake API on loopback behind it. Rounds alternate which goes first; medians
and their ratio. Goal: follow-up / fresh <= 1.2. Only the ratio compares: the machine's load
moves both figures. bench/follow_up_bench.py measures the container alone.
Needs the project's Docker engine and the cli image (CLAUDE_RUNNER_CLI_IMAGE names another).
Run: .venv/bin/python bench/follow_up_task_bench.py [ROUNDS] [TRANSCRIPT_BYTES]  (7 1048576)
"""

import atexit
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _setup import django_setup, docker_host_default

docker_host_default()
django_setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from follow_up_bench import grown  # noqa: E402

from accounts.selectors import preferences_get  # noqa: E402
from tasks.follow_ups import task_continue  # noqa: E402
from tasks.models import CodingTask, TaskConversation, TaskStatus  # noqa: E402
from tasks.services import task_create  # noqa: E402
from tests.agent_image.helpers import make_bare_repo  # noqa: E402
from tests.fakes.anthropic_api import FakeAnthropicAPI  # noqa: E402

IMAGE = os.environ.get("CLAUDE_RUNNER_CLI_IMAGE", "claude-runner-agent:2.1.332")
PROMPT = "Create the hello file please."
KEY = "sk-ant-api03-follow-up-task-bench-0123456789"


def timed(api: FakeAnthropicAPI, start: Callable[[], CodingTask]) -> float:
    """Seconds from start() being called to the first model request it caused."""
    before = len(api.messages_requests())
    seen: list[float] = []

    def watch() -> None:
        deadline = time.monotonic() + 300
        while len(api.messages_requests()) <= before and time.monotonic() < deadline:
            time.sleep(0.002)
        seen.append(time.monotonic())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    began = time.monotonic()
    task = start()
    watcher.join(timeout=300)
    task.refresh_from_db()
    if task.status != TaskStatus.SUCCEEDED or not seen:
        raise SystemExit(f"task {task.pk} did not succeed: {task.error_message}\n{task.log}")
    return seen[0] - began


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1024 * 1024
    settings.AGENT_IMAGE = IMAGE
    settings.AGENT_NETWORK_MODE = "none"
    settings.AGENT_ALLOW_LOCAL_REPOS = True
    settings.AGENT_LOCAL_REPOS_ROOT = tempfile.gettempdir()
    settings.AGENT_GATEWAY_SOCKET_ROOT = tempfile.mkdtemp(prefix="fub-", dir="/tmp")
    atexit.register(shutil.rmtree, settings.AGENT_GATEWAY_SOCKET_ROOT, ignore_errors=True)
    settings.AGENT_EXTRA_ENV = {"DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1"}
    settings.AGENT_MAX_RUNNING_TASKS_PER_USER = 1000
    settings.AGENT_MAX_QUEUED_TASKS_PER_USER = 1000
    folder = Path(tempfile.mkdtemp(prefix="follow-up-task-bench-"))
    repo = f"file://{make_bare_repo(folder, {'README.md': 'hi\n'})}"
    user = get_user_model().objects.create_user("bench")
    prefs = preferences_get(user=user)
    prefs.api_key, prefs.api_key_last4 = KEY, KEY[-4:]
    prefs.save()
    with FakeAnthropicAPI() as api:
        settings.ANTHROPIC_API_URL = api.url
        parent = task_create(owner=user, repo_url=repo, prompt=PROMPT)
        parent.refresh_from_db()
        if parent.status != TaskStatus.SUCCEEDED:
            raise SystemExit(f"the first task did not succeed: {parent.error_message}")
        kept = TaskConversation.objects.get(pk=parent.pk)
        transcript = grown(kept.transcript.encode(), size).decode()
        TaskConversation.objects.filter(pk=parent.pk).update(transcript=transcript)

        def fresh() -> CodingTask:
            return task_create(owner=user, repo_url=repo, prompt=PROMPT)

        def follow_up() -> CodingTask:
            return task_continue(parent=parent, prompt=PROMPT)

        timed(api, follow_up)  # a warm-up of both paths
        timed(api, fresh)
        times: dict[str, list[float]] = {"fresh": [], "follow-up": []}
        for n in range(rounds):
            order = ["fresh", "follow-up"] if n % 2 == 0 else ["follow-up", "fresh"]
            for name in order:
                times[name].append(timed(api, fresh if name == "fresh" else follow_up))
        last = CodingTask.objects.filter(parent=parent).order_by("-pk").first()
        carried = TaskConversation.objects.get(pk=last.pk) if last else None
    print(f"image {IMAGE}; transcript {len(transcript.encode())} bytes; {rounds} rounds")
    print(f"the last follow-up carried: {carried.carried if carried else '?'} "
          f"{carried.carried_note if carried else ''}")  # fmt: skip
    print("submit -> first /v1/messages request, median (min-max):")
    for name, values in times.items():
        print(f"  {name:9} {statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})")
    ratio = statistics.median(times["follow-up"]) / statistics.median(times["fresh"])
    verdict = "ok" if ratio <= 1.2 else "over the goal"
    best = min(times["follow-up"]) / min(times["fresh"])
    print(f"ratio follow-up/fresh {ratio:.2f}x (goal <= 1.20x: {verdict}); fastest runs "
          f"{best:.2f}x; load average {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
