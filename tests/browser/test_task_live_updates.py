"""A task page follows its task in a real browser with the cursor poll: the log grows by its
new tail only, a notice goes once the task moves on, Cancel asks first, the list follows too."""

from django.utils import timezone

from tasks.models import CodingTask, TaskStatus
from tasks.run.log import TaskLog


def running_task(user, first_line: bytes) -> tuple[CodingTask, TaskLog]:
    task = CodingTask.objects.create(
        owner=user,
        repo_url="https://github.com/acme/app.git",
        prompt="Refactor the parser",
        status=TaskStatus.RUNNING,
        started_at=timezone.now(),
    )
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=100_000)
    log.feed(first_line)
    log.flush()
    return task, log


def test_the_log_grows_in_place_and_unchanged_polls_are_empty(
    logged_in_page, live_server, screenshot, user
):
    page = logged_in_page
    task, log = running_task(user, b"Claude Code 2.1.332 started (model m1)\n")
    answers: list[int] = []
    page.on(
        "response",
        lambda r: answers.append(r.status) if f"/tasks/{task.pk}/live/" in r.url else None,
    )
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    page.locator("#task-log", has_text="started (model m1)").wait_for()
    page.wait_for_timeout(4500)  # two polls with nothing new
    assert answers
    assert set(answers) == {204}

    log.feed(b"-> Edit(src/parser.py)\nThe <parser> is simpler now\n")
    log.flush()
    page.locator("#task-log", has_text="The <parser> is simpler now").wait_for(timeout=8000)
    text = page.locator("#task-log").inner_text()
    assert text.count("started (model m1)") == 1  # appended, never repeated
    assert text.index("started (model m1)") < text.index("-> Edit(src/parser.py)")
    assert 200 in answers
    log.feed(b"Running the tests\n")
    log.flush()
    page.locator("#task-log", has_text="Running the tests").wait_for(timeout=8000)
    assert page.locator("#task-log").inner_text().count("-> Edit(src/parser.py)") == 1
    screenshot("task-live-01-log-tail")

    CodingTask.objects.filter(pk=task.pk).update(
        status=TaskStatus.SUCCEEDED, finished_at=timezone.now(), result_text="Parser refactored."
    )
    page.locator("text=Parser refactored.").wait_for(timeout=8000)
    screenshot("task-live-02-finished")


def test_a_notice_goes_once_the_task_moves_on(
    logged_in_page, live_server, screenshot, user, settings
):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    page = logged_in_page
    page.goto(f"{live_server.url}/tasks/")
    page.fill("#id_repo_url", "https://github.com/acme/app.git")
    page.fill("#id_prompt", "Add a notes file")
    page.click("button:has-text('Run task')")
    page.wait_for_url("**/tasks/*/")
    task = CodingTask.objects.get(owner=user)
    notice = page.locator(".message", has_text=f"Task {task.pk} queued.")
    assert notice.is_visible()
    screenshot("task-live-03-queued-notice")
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=100_000)
    CodingTask.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    log.note("Cloned the repository")
    page.locator("#task-log", has_text="Cloned the repository").wait_for(timeout=8000)
    assert notice.count() == 0
    assert page.locator(".badge", has_text="Running").first.is_visible()
    screenshot("task-live-04-running-without-stale-notice")


def test_cancel_asks_first(logged_in_page, live_server, screenshot, user):
    page = logged_in_page
    task, _ = running_task(user, b"working\n")
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    page.click("text=Cancel")
    page.wait_for_url(f"**/tasks/{task.pk}/cancel/")
    assert page.locator("h1", has_text=f"Cancel task {task.pk}?").is_visible()
    screenshot("task-live-05-cancel-confirm")
    page.click("text=No, keep it")
    page.wait_for_url(f"**/tasks/{task.pk}/")
    task.refresh_from_db()
    assert not task.cancel_requested
    page.click("text=Cancel")
    page.click("button:has-text('Yes, cancel the task')")
    page.wait_for_url(f"**/tasks/{task.pk}/")
    task.refresh_from_db()
    assert task.cancel_requested
    assert page.locator(".message", has_text="Stopping the task").is_visible()
    screenshot("task-live-06-stopping")


def test_the_task_list_follows_a_running_task(logged_in_page, live_server, screenshot, user):
    page = logged_in_page
    task, _ = running_task(user, b"working\n")
    page.goto(f"{live_server.url}/tasks/")
    assert page.locator("td .badge", has_text="Running").is_visible()
    CodingTask.objects.filter(pk=task.pk).update(
        status=TaskStatus.FAILED, finished_at=timezone.now()
    )
    page.locator("td .badge", has_text="Failed").wait_for(timeout=10_000)
    assert page.locator("#task-list-live[hx-get]").count() == 0  # stopped polling
    screenshot("task-live-07-list-followed")
