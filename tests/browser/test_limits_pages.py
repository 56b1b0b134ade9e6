"""Usage limits in a real browser: a task waiting for a usage limit with its countdown, the Usage
page with its chart, and the notification choices."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from notifications.models import EventKind
from notifications.services import settings_get
from oauth_tokens.models import AuthMethod, AuthSource
from tasks.models import CodingTask, LimitVerdict, TaskStatus, WaitReason
from tests.tasks.conftest import task_make


def test_a_waiting_task_counts_down_to_its_resume(logged_in_page, live_server, screenshot, user):
    now = timezone.now()
    task = task_make(
        user,
        repo_url="https://github.com/acme/app.git",
        prompt="Add a notes file",
        status=TaskStatus.WAITING,
        requeue_at=now + timedelta(hours=2, minutes=11),
        waiting_since=now,
        wait_reason=WaitReason.USAGE_LIMIT,
        auth_method=AuthMethod.OAUTH,
        auth_source=AuthSource.USER,
        error_message="Stopped by the Claude five-hour limit.",
        limit={
            "verdict": LimitVerdict.LIMITED,
            "window": "five_hour",
            "limited_until": now + timedelta(hours=2, minutes=10),
            "waits": 1,
        },
    )
    page = logged_in_page
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    box = page.locator("#waiting-box")
    assert box.is_visible()
    assert "Waiting for reset" in page.locator(".badge-waiting").inner_text()
    words = page.locator("#limit-words").inner_text()
    assert words.startswith("limited until ")
    assert "(in 2 h 9 min)" in words or "(in 2 h 10 min)" in words
    countdown = page.locator("#resume-countdown")
    first = countdown.inner_text()
    page.wait_for_timeout(2200)
    second = countdown.inner_text()
    assert first != second
    assert second.startswith("2 h 10 min")
    assert page.locator("a", has_text="Cancel").is_visible()
    assert page.locator("button", has_text="Run now with my API key").count() == 0  # no key
    screenshot("limits-01-waiting-task")
    page.click("a:has-text('Cancel')")
    page.click("button:has-text('Yes, cancel the task')")  # it asks first
    page.wait_for_selector(".badge-cancelled")
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED


def test_the_usage_page_charts_the_last_30_days(logged_in_page, live_server, screenshot, user):
    now = timezone.now()
    for days_ago, tokens in ((0, 1200), (0, 800), (3, 500), (12, 2500)):
        task = task_make(
            user,
            repo_url="https://github.com/acme/app.git",
            status=TaskStatus.SUCCEEDED,
            usage={
                "input_tokens": tokens,
                "output_tokens": tokens // 4,
                "cost_usd": Decimal("0.10"),
            },
        )
        CodingTask.objects.filter(pk=task.pk).update(created_at=now - timedelta(days=days_ago))
    page = logged_in_page
    page.goto(f"{live_server.url}/usage/")
    assert page.locator("h1", has_text="Usage").is_visible()
    bars = page.locator(".usage-chart svg rect.bar")
    assert bars.count() == 3  # three days with tasks
    heights = sorted(float(bars.nth(i).get_attribute("height")) for i in range(3))
    assert heights[-1] == 140  # the busiest day (12 days ago: 2500 + 625 tokens) is full height
    text = page.locator("body").inner_text()
    assert "4 tasks" in text
    assert "$0.4000" in text
    rows = page.locator("#usage-table tbody tr")
    assert rows.count() == 3
    screenshot("limits-02-usage-page")
    page.click("nav.tabs a:has-text('Tasks')")
    page.wait_for_url("**metric=tasks")
    assert page.locator(".usage-chart svg rect.bar").count() == 3
    screenshot("limits-03-usage-tasks")


def test_notification_choices_are_saved(logged_in_page, live_server, screenshot, user, settings):
    settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = []
    # As on a server without EMAIL_URL (tests otherwise get Django's in-memory mailer).
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.dummy.EmailBackend"}}
    user.email = "alice@example.test"
    user.save()
    page = logged_in_page
    page.goto(f"{live_server.url}/accounts/settings/code-agent/")
    page.click("a:has-text('Notifications')")
    page.wait_for_url("**/settings/notifications/")
    assert page.locator("#email-off").is_visible()  # no EMAIL_URL on this server
    assert not page.is_checked("#id_email_enabled")  # so email is not promised
    assert page.is_disabled("#id_email_enabled")
    page.uncheck(f"input[value='{EventKind.TASK_SUCCEEDED}']")
    page.fill("#id_webhook_url", "https://127.0.0.1/hook")
    page.click("button:has-text('Save notification settings')")
    refused = page.locator("[role=alert]", has_text="loopback address")
    assert refused.is_visible()
    # An error, in the error colours, next to the field that still holds what was typed.
    assert refused.evaluate("e => getComputedStyle(e).color") == "rgb(201, 42, 42)"
    assert page.input_value("#id_webhook_url") == "https://127.0.0.1/hook"
    assert page.locator(".message-success").count() == 0
    screenshot("limits-04-notifications-refused")
    page.fill("#id_webhook_url", "")
    page.uncheck(f"input[value='{EventKind.TASK_SUCCEEDED}']")
    page.click("button:has-text('Save notification settings')")
    assert page.locator(".message", has_text="Notification settings saved").is_visible()
    chosen = settings_get(user=user)
    assert EventKind.TASK_SUCCEEDED not in chosen.events
    assert EventKind.TASK_WAITING in chosen.events
    assert page.is_checked(f"input[value='{EventKind.TASK_WAITING}']")
    assert not page.is_checked(f"input[value='{EventKind.TASK_SUCCEEDED}']")
    screenshot("limits-05-notifications-saved")
