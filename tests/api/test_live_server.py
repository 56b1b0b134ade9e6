"""The API over real HTTP (pytest-django's live server and requests), as a script sees it."""

import threading
import time
from pathlib import Path

import pytest
import requests

from tasks.models import CodingTask, TaskStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(live_server, bearer):
    session = requests.Session()
    session.headers.update(bearer)
    base = live_server.url + "/api"

    def call(method: str, path: str, **kwargs) -> requests.Response:
        return session.request(method, base + path, timeout=20, **kwargs)

    return call


def test_a_script_submits_waits_and_reads_the_diff(api, settings):
    settings.API_WAIT_POLL_SECONDS = 0.05
    made = api("POST", "/tasks", json={"repository": "https://github.com/a/b.git", "prompt": "x"})
    assert made.status_code == 201
    task_id = made.json()["id"]

    def finish() -> None:
        time.sleep(0.5)
        CodingTask.objects.filter(pk=task_id).update(
            status=TaskStatus.SUCCEEDED, diff="diff --git a/f b/f\n+1\n", result_text="ok"
        )

    worker = threading.Thread(target=finish)
    worker.start()
    waited = api("GET", f"/tasks/{task_id}", params={"wait": 10})
    worker.join()
    assert waited.status_code == 200
    assert waited.headers["X-Task-Changed"] == "true"
    assert waited.json()["status"] == "succeeded"
    assert waited.json()["diff"] == "diff --git a/f b/f\n+1\n"


def test_errors_over_http_are_json_with_a_code(api, live_server):
    assert api("GET", "/tasks/999999").json()["code"] == "not_found"
    anonymous = requests.get(live_server.url + "/api/tasks", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"].startswith("application/json")
    assert anonymous.json()["code"] == "unauthorized"
    broken = api("POST", "/tasks", data=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["code"] == "invalid_json"
    assert requests.get(live_server.url + "/api/openapi.json", timeout=10).status_code == 200


def test_throttled_over_http(api, settings):
    settings.API_TOKEN_RATE = "2/min"
    assert [api("GET", "/tasks").status_code for _ in range(3)] == [200, 200, 429]


def test_the_readme_example_submits_waits_and_prints_the_diff(
    live_server, bearer, settings, monkeypatch, capsys
):
    settings.API_WAIT_POLL_SECONDS = 0.05
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("Submit a task, wait for it and print its diff")[1]
    code = example.split("```python\n")[1].split("```")[0]
    monkeypatch.setenv("RUNNER", live_server.url)
    monkeypatch.setenv("TOKEN", bearer["Authorization"].removeprefix("Bearer "))
    # The task stays queued until this test's "worker" below finishes it: tests run tasks inline,
    # and a real run here would race that worker for the task's end.
    monkeypatch.setattr("tasks.services.task_enqueue", lambda *, task_id: None)

    def finish() -> None:
        while not CodingTask.objects.exists():
            time.sleep(0.05)
        time.sleep(0.3)
        CodingTask.objects.update(
            status=TaskStatus.SUCCEEDED, diff="diff --git a/t b/t\n+fixed\n", result_text="Fixed."
        )

    worker = threading.Thread(target=finish)
    worker.start()
    exec(code, {})  # noqa: S102  (our own README's example, against the test server)
    worker.join()
    printed = capsys.readouterr().out
    assert "succeeded Fixed." in printed
    assert "+fixed" in printed


def test_a_script_messages_a_running_task_then_follows_up_on_it(api, user):
    running = CodingTask.objects.create(
        owner=user, repo_url="https://github.com/a/b.git", prompt="p", status=TaskStatus.RUNNING
    )
    sent = api("POST", f"/tasks/{running.pk}/messages", json={"text": "Keep the API as it is"})
    assert sent.status_code == 201
    assert sent.json()["kind"] == "message"
    huge = api("POST", f"/tasks/{running.pk}/messages", json={"text": "x" * 1_000_000})
    assert huge.status_code == 400
    assert huge.json()["field"] == "text"
    CodingTask.objects.filter(pk=running.pk).update(status=TaskStatus.FAILED)
    follow_up = api("POST", f"/tasks/{running.pk}/messages", json={"text": "Try again, smaller"})
    assert follow_up.json()["kind"] == "follow_up"
    assert follow_up.json()["task"]["parent_id"] == running.pk
    again = api("POST", f"/tasks/{running.pk}/run-again")
    assert again.status_code == 201
    assert again.json()["conversation"]["retry_of"] == running.pk
    read = api("GET", f"/tasks/{running.pk}").json()
    assert [m["text"] for m in read["messages"]] == ["Keep the API as it is"]
