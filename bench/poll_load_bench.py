"""Task pages under many watchers: the app started as `make run` starts it (gunicorn with
config/gunicorn.py, so the same worker count; SQLite), 10 running tasks whose logs grow by a
line a second (--log-every; written through the worker's own TaskLog), and P pollers that each
fetch a task's live part once a second, as htmx does, for S seconds. Three phases in one
run, same load:

- static: a static file (whitenoise), the floor any page is measured against;
- full: the live part drawn every time (no cursor: what every poll cost before the cursor);
- live: the poll as the page makes it, with its cursor: 204 when nothing changed, the log's new
  tail when only the log moved on.

Prints p50/p95/p99/max, requests per second, the server's CPU time per request (gunicorn's
processes: the figure other load on the machine cannot blur), errors and answers by status for
each phase, and each phase's p95 and p99 as ratios to the static one.
Run: .venv/bin/python bench/poll_load_bench.py [--pollers 200] [--seconds 45]
     [--phases static,full,live] [--app-root PATH] [--full-path live|detail] [--log-every 1]
(--app-root: another checkout, e.g. an older commit, to compare; --full-path detail polls
/tasks/<id>/ with HX-Request, which older checkouts answer with the live part.)
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from _setup import ROOT
from cryptography.fernet import Fernet

TASKS = 10
START_LOG_LINES = 300  # a task some minutes in
CURSOR = re.compile(r'name="(state|since)" value="([^"]*)"')

# Runs inside the app's checkout (its own models): make the user, the running tasks and a
# session; print them; then give each task's log a line a second, through TaskLog.
FEEDER = r"""
import json, sys, time
import django
django.setup()
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from tasks.models import CodingTask
from tasks.run.log import TaskLog

tasks_count, start_lines, every = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
user = get_user_model().objects.create_user(username="watcher", password=None)
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
logs = []
for i in range(tasks_count):
    task = CodingTask.objects.create(
        owner=user, repo_url="https://github.com/acme/app.git", prompt=f"Task {i}: refactor",
        status="running", started_at=timezone.now(),
    )
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=settings.AGENT_LOG_MAX_BYTES)
    log.feed(b"".join(b"Reading src/module_%d.py and planning the change, step %d\n" % (i, n)
                      for n in range(start_lines)))
    log.flush()
    logs.append((task.pk, log))
print(json.dumps({"session": session.session_key, "tasks": [pk for pk, _ in logs]}), flush=True)
n = 0
while True:
    time.sleep(every)
    n += 1
    for pk, log in logs:
        log.feed(b"-> Edit(src/module_%d.py) line %d\n" % (pk, n))
        log.flush()
"""


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # CPU seconds the gunicorn processes used: what load cannot blur

    def count(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(folder: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env |= {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}{os.environ.get('BENCH_DB_QUERY', '')}",
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    return env


def server_cpu_seconds(master: int) -> float:
    """CPU time (user + system) of the gunicorn master and its workers so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    total = 0
    for pid in [str(master), *children]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn ended with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (http on loopback)
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer in {timeout:.0f} s")


async def poller(
    session: aiohttp.ClientSession, url: str, phase: Phase, stop_at: float, cursor: bool
) -> None:
    params: dict[str, str] = {}
    # Pollers start spread over the first second, as pages opened at different times do.
    await asyncio.sleep(secrets.randbelow(1000) / 1000)
    next_at = time.monotonic()
    while time.monotonic() < stop_at:
        started = time.monotonic()
        try:
            async with session.get(url, params=params if cursor else None) as response:
                body = await response.text()
                phase.count(str(response.status))
                if response.status not in (200, 204):
                    phase.errors += 1
                elif cursor and response.status == 200:
                    params |= dict(CURSOR.findall(body))
        except (aiohttp.ClientError, TimeoutError):
            phase.errors += 1
            phase.count("error")
        phase.latencies.append(time.monotonic() - started)
        # htmx's "every 1s": the next poll a second after this one was due, or at once when a
        # slow answer made it late (one request at a time per page).
        next_at += 1.0
        await asyncio.sleep(max(0.0, min(next_at, stop_at) - time.monotonic()))


async def phase_run(
    *, name: str, urls: list[str], cookie: str, pollers: int, seconds: float, cursor: bool
) -> Phase:
    phase = Phase(name)
    headers = {"HX-Request": "true", "Cookie": f"sessionid={cookie}"}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=timeout
    ) as session:
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(
            *(poller(session, urls[i % len(urls)], phase, stop_at, cursor) for i in range(pollers))
        )
        phase.seconds = time.monotonic() - started
    return phase


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(phases: list[Phase]) -> None:
    base = next((p for p in phases if p.name == "static"), None)
    for p in phases:
        ms = [x * 1000 for x in p.latencies]
        p95, p99 = percentile(ms, 0.95), percentile(ms, 0.99)
        line = (
            f"{p.name:>6}: p50 {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  "
            f"p99 {p99:7.1f} ms  max {max(ms):7.1f} ms  {len(ms) / p.seconds:6.1f} req/s  "
            f"server CPU {p.server_cpu / max(1, len(ms)) * 1000:.2f} ms/req  "
            f"errors {p.errors}  answers {json.dumps(p.statuses, sort_keys=True)}"
        )
        if base is not None and p is not base and base.latencies:
            base_ms = [x * 1000 for x in base.latencies]
            line += (
                f"  p95 x{p95 / percentile(base_ms, 0.95):.1f} and p99 "
                f"x{p99 / percentile(base_ms, 0.99):.1f} the static page's"
            )
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pollers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--phases", default="static,full,live")
    parser.add_argument("--app-root", type=Path, default=ROOT)
    parser.add_argument("--full-path", choices=("live", "detail"), default="live")
    parser.add_argument("--log-every", type=float, default=1.0, help="seconds between log lines")
    args = parser.parse_args()
    app_root = args.app_root.resolve()
    python = ROOT / ".venv" / "bin" / "python"
    folder = Path(tempfile.mkdtemp(prefix="poll-bench-"))
    port = free_port()
    env = app_env(folder, port)
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v0"], cwd=app_root, env=env, check=True
    )
    feeder = subprocess.Popen(
        [python, "-c", FEEDER, str(TASKS), str(START_LOG_LINES), str(args.log_every)],
        cwd=app_root,
        env=env | {"PYTHONPATH": str(app_root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert feeder.stdout is not None
    made = json.loads(feeder.stdout.readline())
    server = subprocess.Popen(
        [python, "-m", "gunicorn", "-c", "config/gunicorn.py", "--access-logfile", "/dev/null"],
        cwd=app_root,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base_url}/static/css/app.css", server)
        workers = subprocess.run(
            [python, "-c", "import runpy; print(runpy.run_path('config/gunicorn.py')['workers'])"],
            cwd=app_root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(
            f"gunicorn {workers} workers (config/gunicorn.py), SQLite, {TASKS} running tasks "
            f"whose logs grow a line every {args.log_every:g} s, {args.pollers} pollers once a "
            f"second for {args.seconds:g} s "
            f"per phase, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        live = [f"{base_url}/tasks/{pk}/live/" for pk in made["tasks"]]
        full = (
            live
            if args.full_path == "live"
            else [f"{base_url}/tasks/{pk}/" for pk in made["tasks"]]
        )
        plans = {
            "static": ([f"{base_url}/static/css/app.css"], False),
            "full": (full, False),
            "live": (live, True),
        }
        phases = []
        for name in args.phases.split(","):
            urls, cursor = plans[name]
            cpu_before = server_cpu_seconds(server.pid)
            phase = asyncio.run(
                phase_run(
                    name=name,
                    urls=urls,
                    cookie=made["session"],
                    pollers=args.pollers,
                    seconds=args.seconds,
                    cursor=cursor,
                )
            )
            phase.server_cpu = server_cpu_seconds(server.pid) - cpu_before
            phases.append(phase)
            report(phases[-1:])
        print("--- all phases ---")
        report(phases)
    finally:
        for process in (server, feeder):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
