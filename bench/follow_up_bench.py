"""How much later a follow-up's agent starts than a fresh task's, at the container level.

The real Claude Code CLI (the cli image) in a container with no network, its gateway socket a
stand-in (tests/agent_image/message_gateway.py: the fake Anthropic API behind it, messages
on), measured from container start to the first /v1/messages request the fake API receives:
  fresh   - a new session: the prompt only;
  resumed - the same prompt with a transcript of about 1 MB in task/resume/ (the entrypoint
            checks and cleans it, the CLI loads it with --resume).
The transcript is a real one from a first run, grown with further user and assistant turns
(a few KB each) to the size. Rounds alternate which goes first; medians and their ratio.
Goal: resumed / fresh <= 1.2. Only the ratio compares: the machine's load moves
both figures.
Needs the project's Docker engine and the cli image (scripts/build-agent-images.sh cli;
CLAUDE_RUNNER_CLI_IMAGE names another).
Run: .venv/bin/python bench/follow_up_bench.py [ROUNDS] [TRANSCRIPT_BYTES]  (defaults 7 1048576)
"""

import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _setup import ROOT, docker_host_default

docker_host_default()
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from tests.agent_image.helpers import make_bare_repo  # noqa: E402
from tests.agent_image.message_gateway import MessageGateway  # noqa: E402
from tests.agent_image.sessions import Resume, SessionRun, run_session  # noqa: E402
from tests.fakes.anthropic_api import FakeAnthropicAPI  # noqa: E402

IMAGE = os.environ.get("CLAUDE_RUNNER_CLI_IMAGE", "claude-runner-agent:2.1.332")
PLACEHOLDER = "claude-runner-placeholder-follow-up-bench-0123456789abcdefghijklmn"
PROMPT = "Create the hello file please."


def run(client: docker.DockerClient, repo: Path, resume: Resume | None) -> tuple[float, SessionRun]:
    """(seconds from container start to the first model request, the run)."""
    with (
        FakeAnthropicAPI(valid_credentials={PLACEHOLDER}) as api,
        MessageGateway(api, placeholder=PLACEHOLDER) as gateway,
    ):
        first: list[float] = []

        def during() -> None:
            deadline = time.monotonic() + 120
            while not api.messages_requests() and time.monotonic() < deadline:
                time.sleep(0.002)
            first.append(time.monotonic())

        result = run_session(
            client,
            IMAGE,
            prompt=PROMPT,
            repo=repo,
            resume=resume,
            gateway=gateway,
            secret_env={"ANTHROPIC_API_KEY": PLACEHOLDER},
            env={"AGENT_MESSAGES": "1"},
            during=during,
        )
    if result.exit_code != 0 or not api.messages_requests():
        raise SystemExit(f"the run failed:\n{result.describe()}")
    return first[0] - result.started, result


def grown(transcript: bytes, size: int) -> bytes:
    """The transcript with further user/assistant turns chained after its last line."""
    lines = [json.loads(line) for line in transcript.splitlines()]
    last = next(line for line in reversed(lines) if line.get("uuid"))
    base: dict[str, Any] = {k: last[k] for k in ("sessionId", "cwd", "version") if k in last}
    out = bytearray(transcript)
    parent, n = last["uuid"], 0
    while len(out) < size:
        n += 1
        for kind in ("user", "assistant"):
            text = f"Turn {n} ({kind}): " + "Some earlier discussion of the code. " * 60
            line = dict(
                base,
                type=kind,
                uuid=str(uuid.uuid4()),
                parentUuid=parent,
                message={"role": kind, "content": [{"type": "text", "text": text}]},
            )
            out += json.dumps(line).encode() + b"\n"
            parent = line["uuid"]
    return bytes(out)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1024 * 1024
    client = docker.from_env(timeout=300)
    repo = make_bare_repo(Path(tempfile.mkdtemp(prefix="follow-up-bench-")), {"README.md": "hi\n"})
    _, seed = run(client, repo, None)
    transcript = grown(seed.transcript, size)
    resume = Resume(seed.session_id, transcript)
    _, check = run(client, repo, resume)  # and a warm-up of both paths
    if check.status["resume"]["state"] != "resumed":
        raise SystemExit(f"the transcript was not resumed: {check.status}")
    times: dict[str, list[float]] = {"fresh": [], "resumed": []}
    for n in range(rounds):
        order = ["fresh", "resumed"] if n % 2 == 0 else ["resumed", "fresh"]
        for name in order:
            seconds, _ = run(client, repo, resume if name == "resumed" else None)
            times[name].append(seconds)
    fresh = statistics.median(times["fresh"])
    resumed = statistics.median(times["resumed"])
    print(f"image {IMAGE}; transcript {len(transcript)} bytes; {rounds} rounds, alternating")
    print("container start -> first /v1/messages request, median (min-max):")
    for name, values in times.items():
        print(f"  {name:8} {statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})")
    verdict = "ok" if resumed / fresh <= 1.2 else "over the goal"
    best = min(times["resumed"]) / min(times["fresh"])
    print(f"ratio resumed/fresh {resumed / fresh:.2f}x (goal <= 1.20x: {verdict})")
    print(f"ratio of the fastest runs {best:.2f}x; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
