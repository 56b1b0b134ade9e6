"""The task pages in a real browser: submit, follow a running task live, see the diff."""

from django.utils import timezone

from tasks.models import CodingTask, TaskStatus, TaskUsage

DIFF = """diff --git a/AGENT_NOTES.md b/AGENT_NOTES.md
new file mode 100644
index 0000000..e69de29
--- /dev/null
+++ b/AGENT_NOTES.md
@@ -0,0 +1,2 @@
+# Notes
+Added by the agent.
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-to be deleted
"""


def test_submit_then_follow_a_task_live_until_its_diff_shows(
    logged_in_page, live_server, screenshot, user, settings
):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    page = logged_in_page
    page.goto(f"{live_server.url}/tasks/")
    page.fill("#id_repo_url", "ssh://git@github.com/acme/app.git")
    page.fill("#id_prompt", "Add a notes file")
    page.click("button:has-text('Run task')")
    assert page.locator(".error-box", has_text="Only https://").is_visible()
    assert page.input_value("#id_prompt") == "Add a notes file"  # nothing typed is lost
    screenshot("tasks-01-bad-url")

    page.fill("#id_repo_url", "https://github.com/acme/app.git")
    page.click("button:has-text('Run task')")
    page.wait_for_url("**/tasks/*/")
    task = CodingTask.objects.get(owner=user)
    assert page.locator(".badge", has_text="Queued").first.is_visible()

    # The worker starts it and writes to the log: the page follows without a reload.
    CodingTask.objects.filter(pk=task.pk).update(
        status=TaskStatus.RUNNING, started_at=timezone.now(), log="Claude Code 2.1.332 started\n"
    )
    page.locator("pre.log", has_text="Claude Code 2.1.332 started").wait_for(timeout=8000)
    assert page.locator(".badge", has_text="Running").first.is_visible()
    screenshot("tasks-02-running")

    CodingTask.objects.filter(pk=task.pk).update(
        status=TaskStatus.SUCCEEDED,
        finished_at=timezone.now(),
        result_text="Added AGENT_NOTES.md and removed old.txt.",
        diff=DIFF,
        changed_files=[
            {"status": "A", "path": "AGENT_NOTES.md"},
            {"status": "D", "path": "old.txt"},
        ],
        exit_code=0,
    )
    TaskUsage.objects.filter(pk=task.pk).update(num_turns=3)
    page.locator("pre.diff .add", has_text="+Added by the agent.").wait_for(timeout=8000)
    assert page.locator(".diff .del", has_text="-to be deleted").is_visible()
    assert page.locator("text=Added AGENT_NOTES.md and removed old.txt.").is_visible()
    assert page.locator("a:has-text('Cancel'), button:has-text('Cancel')").count() == 0
    screenshot("tasks-03-done")

    page.goto(f"{live_server.url}/tasks/")
    assert page.locator("td .badge", has_text="Succeeded").is_visible()
    screenshot("tasks-04-list")
