"""A task page follows its task in a real browser with the cursor poll: the log grows by its
new tail only, a notice goes once the task moves on, Cancel asks first, the list follows too,
and so do the messages sent, a late one up to the follow-up it becomes."""

from django.utils import timezone

from tasks.follow_ups import task_message_send
from tasks.models import CodingTask, TaskConversation, TaskMessage, TaskStatus
from tasks.results import RunResult
from tasks.run.finish import task_finish
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


def test_sent_messages_follow_the_task_and_a_late_one_becomes_a_follow_up(
    logged_in_page, live_server, screenshot, user, settings
):
    settings.AGENT_MESSAGES = True
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    page = logged_in_page
    task, _ = running_task(user, b"Claude Code 2.1.332 started (model m1)\n")
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    page.fill("#id_text", "half typed")
    # Sent from elsewhere (the API, another tab): the list shows it, the box keeps its text.
    task_message_send(task=task, text="Leave the public API as it is")
    sent = page.locator("#sent-messages")
    sent.get_by_text("waiting for the agent's next step").wait_for(timeout=8000)
    assert "Leave the public API as it is" in sent.inner_text()
    TaskMessage.objects.filter(task=task).update(delivered_at=timezone.now())
    sent.get_by_text("taken by the agent").wait_for(timeout=8000)

    TaskConversation.objects.filter(pk=task.pk).update(messages_closed=True)
    task_message_send(task=task, text="And the changelog")
    sent.get_by_text("it becomes a follow-up when the task finishes").wait_for(timeout=8000)
    assert page.input_value("#id_text") == "half typed"
    screenshot("task-live-08-late-message")

    task_finish(task_id=task.pk, result=RunResult(TaskStatus.SUCCEEDED, ""))
    follow_up = CodingTask.objects.get(parent=task)
    # The page reloads once the task finished; its conversation now shows the chain.
    chain = page.locator("#task-chain")
    link = chain.get_by_role("link", name=f"became follow-up #{follow_up.pk}")
    link.wait_for(timeout=8000)
    assert page.input_value("#id_prompt") == ""  # it went into the follow-up: nothing to resend
    screenshot("task-live-09-late-message-follow-up")
    link.click()
    page.wait_for_url(f"**/tasks/{follow_up.pk}/")
    assert "And the changelog" in page.locator("pre.prompt").first.inner_text()
