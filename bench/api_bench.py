"""The API against the web form, and the waiting client, on a real gunicorn in the same run.

1. Create + get: N tasks submitted and read back through the API (POST /api/tasks, GET
   /api/tasks/{id}) and N through the web form (POST /tasks/, GET /tasks/{id}/), in alternating
   rounds on the same server. Prints both and their ratio (API / form; at most 1.0 wanted).
2. Wake-up delay: a client waits (GET /api/tasks/{id}?wait=30); the bench changes the task's
   status in the database and times until the answer arrives. Median and max over K tries
   (wanted: median under 200 ms).
3. Occupancy: W clients wait at once on ONE server process, then a plain GET is timed: with
   gunicorn's asgi worker the waits are coroutines and the GET is answered at once; with the
   sync worker the GET queues behind the waits.
Run: .venv/bin/python bench/api_bench.py [N] [K] [W]     (defaults 60 15 20)
"""

import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from _setup import ROOT, django_setup

PASSWORD = "bench-password-0123"  # a throwaway user on a throwaway database
REPO = "https://github.com/bench/repo.git"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def server(worker: str, workers: int) -> Iterator[str]:
    """gunicorn on the bench database: `asgi` (config.asgi) or `sync` (config.wsgi)."""
    port = _free_port()
    app = "config.asgi:application" if worker == "asgi" else "config.wsgi:application"
    env = os.environ | {
        "TEST_REAL_TASKS": "1",  # jobs go to the database queue; no worker runs them here
        "AGENT_MAX_QUEUED_TASKS_PER_USER": "1000000",
        "API_TOKEN_RATE": "1000000/min",
        "API_WAIT_POLL_SECONDS": os.environ.get("API_WAIT_POLL_SECONDS", "0.1"),
    }
    command = [sys.executable, "-m", "gunicorn", "-k", worker, "-w", str(workers)]
    command += ["-b", f"127.0.0.1:{port}", "--timeout", "120", app]
    log = Path(os.environ["DATABASE_URL"].removeprefix("sqlite:///")).with_suffix(f".{worker}.log")
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(url + "/api/openapi.json", timeout=10)
                break
            except requests.RequestException:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _web_session(url: str, username: str) -> requests.Session:
    web = requests.Session()
    page = web.get(url + "/accounts/login/", timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    web.post(
        url + "/accounts/login/",
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": url + "/accounts/login/"},
        timeout=10,
    )
    return web


def _form_round(web: requests.Session, url: str, n: int) -> float:
    page = web.get(url + "/tasks/", timeout=10).text
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found, "not logged in"
    form = {"repo_url": REPO, "branch": "", "prompt": "bench", "csrfmiddlewaretoken": found[1]}
    start = time.perf_counter()
    for _ in range(n):
        made = web.post(url + "/tasks/", form, allow_redirects=False, timeout=10)
        assert made.status_code == 302, made.status_code
        assert web.get(url + made.headers["Location"], timeout=10).status_code == 200
    return time.perf_counter() - start


def _api_round(api: requests.Session, url: str, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        made = api.post(
            url + "/api/tasks", json={"repository": REPO, "prompt": "bench"}, timeout=10
        )
        assert made.status_code == 201, made.text
        assert api.get(f"{url}/api/tasks/{made.json()['id']}", timeout=10).status_code == 200
    return time.perf_counter() - start


def create_and_get(url: str, username: str, secret: str, n: int) -> tuple[float, float]:
    web = _web_session(url, username)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {secret}"
    _api_round(api, url, 3), _form_round(web, url, 3)  # warm both doors up
    api_s = form_s = 0.0
    rounds = 4
    for _ in range(rounds):  # alternating, so drift on the machine hits both alike
        api_s += _api_round(api, url, n // rounds)
        form_s += _form_round(web, url, n // rounds)
    return api_s, form_s


def wake_ups(url: str, secret: str, task_id: int, tries: int) -> list[float]:
    from tasks.models import CodingTask, TaskStatus  # after django_setup()

    delays = []
    statuses = [TaskStatus.RUNNING, TaskStatus.QUEUED]
    for i in range(tries):
        answered: list[float] = []

        def wait(answered: list[float] = answered) -> None:
            requests.get(
                f"{url}/api/tasks/{task_id}",
                params={"wait": 30},
                headers={"Authorization": f"Bearer {secret}"},
                timeout=40,
            )
            answered.append(time.perf_counter())

        client = threading.Thread(target=wait)
        client.start()
        time.sleep(0.5)  # the request is in and waiting
        changed = time.perf_counter()
        CodingTask.objects.filter(pk=task_id).update(status=statuses[i % 2])
        client.join()
        delays.append(answered[0] - changed)
    return delays


def occupancy(url: str, secret: str, task_id: int, waiters: int) -> float:
    """Seconds a plain GET takes while `waiters` clients wait 5 s on the same server."""
    auth = {"Authorization": f"Bearer {secret}"}
    threads = [
        threading.Thread(
            target=lambda: requests.get(
                f"{url}/api/tasks/{task_id}", params={"wait": 5}, headers=auth, timeout=600
            )
        )
        for _ in range(waiters)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    start = time.perf_counter()
    requests.get(f"{url}/api/tasks?limit=1", headers=auth, timeout=waiters * 6 + 60)
    took = time.perf_counter() - start
    for thread in threads:
        thread.join()
    return took


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    tries = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    waiters = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    django_setup()
    from django.contrib.auth import get_user_model  # after django_setup()

    from api.models import TokenScope  # after django_setup()
    from api.services import api_token_create  # after django_setup()
    from tests.tasks.conftest import task_make  # after django_setup()

    user = get_user_model().objects.create_user("bench", password=PASSWORD)
    secret = api_token_create(owner=user, name="bench", scope=TokenScope.TASKS).secret
    task = task_make(user)
    print(f"create + get, {n} tasks per door, gunicorn 1 worker, SQLite:")
    for worker in ("sync", "asgi"):
        with server(worker, 1) as url:
            api_s, form_s = create_and_get(url, "bench", secret, n)
            print(
                f"  {worker:5}: API {api_s / n * 1000:6.1f} ms/task, form "
                f"{form_s / n * 1000:6.1f} ms/task, ratio API/form {api_s / form_s:.2f}"
            )
    with server("asgi", 1) as url:
        delays = sorted(wake_ups(url, secret, task.pk, tries))
        print(
            f"wake-up after a change (asgi, poll {os.environ.get('API_WAIT_POLL_SECONDS', '0.1')}"
            f" s, {tries} tries): median {statistics.median(delays) * 1000:.0f} ms, "
            f"max {delays[-1] * 1000:.0f} ms"
        )
        took = occupancy(url, secret, task.pk, waiters)
        print(f"a GET while {waiters} clients wait, asgi, 1 process: {took * 1000:.0f} ms")
    with server("sync", 1) as url:
        took = occupancy(url, secret, task.pk, waiters)
        print(f"a GET while {waiters} clients wait, sync, 1 process: {took * 1000:.0f} ms")


if __name__ == "__main__":
    main()
