"""Every page under the Content-Security-Policy in Chromium: nothing refused, htmx still works,
and no page scrolls sideways (a long log line stays inside its box)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import CodingTask, TaskLogProgress, TaskStatus

# Chromium reports each refusal as a `securitypolicyviolation` event and a console error.
COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} ` +
                    `at ${e.sourceFile}:${e.lineNumber} ${e.sample}`);
});
"""
LONG_LINE = "x" * 3000 + " the end of a very long log line"


@pytest.fixture
def csp_page(page):
    console: list[str] = []
    page.on(
        "console",
        lambda message: (
            console.append(message.text)
            if "Content Security Policy" in message.text
            or "Content-Security-Policy" in message.text
            else None
        ),
    )
    page.add_init_script(COLLECT_VIOLATIONS)
    page.csp_console = console
    return page


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None, (url, response and response.status)
    assert response.ok, (url, response and response.status)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self' 'nonce-" in policy, (url, policy)
    assert "style-src 'self' 'nonce-" in policy, (url, policy)
    assert "unsafe-inline" not in policy, (url, policy)
    page.wait_for_load_state("load")
    page.wait_for_timeout(150)  # late reports (styles applied after load)
    assert_no_violations(page, url)


def assert_no_violations(page, url: str) -> None:
    events = page.evaluate("window.__csp")
    assert events == [], (url, events)
    assert page.csp_console == [], (url, page.csp_console)


def no_horizontal_overflow(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_every_page_runs_under_the_csp_without_a_violation(
    csp_page, live_server, user, make_credential
):
    page = csp_page
    user.is_staff = user.is_superuser = True
    user.save()
    credential = make_credential(user)
    task = CodingTask.objects.create(
        owner=user,
        repo_url="https://github.com/acme/app.git",
        prompt="Fix the tests in " + "p" * 3000,  # a long line in the facts grid too
        status=TaskStatus.SUCCEEDED,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        log="Claude Code started\n" + LONG_LINE + "\n",
        result_text="Done.\n" + "y" * 2000,
        diff="diff --git a/x b/x\n+" + "z" * 2000 + "\n",
        changed_files=[{"status": "M", "path": "x"}],
        exit_code=0,
    )

    visit(page, f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice-123")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    assert_no_violations(page, "after login")

    pages = [
        "/",
        "/accounts/settings/code-agent/",
        "/tasks/",
        f"/tasks/{task.pk}/",
        "/admin/",
        reverse("admin:oauth_tokens_oauthcredential_dashboard"),
        "/admin/oauth_tokens/oauthcredential/",
        f"/admin/oauth_tokens/oauthcredential/{credential.pk}/change/",
        "/admin/axes/accessattempt/",
        "/admin/auth/user/",
        f"/admin/auth/user/{user.pk}/change/",
    ]
    for path in pages:
        visit(page, f"{live_server.url}{path}")
        assert no_horizontal_overflow(page), f"{path} scrolls sideways"

    # The task page: the long line stays inside the log box, which fits the page.
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    box = page.locator("pre.log").bounding_box()
    assert box
    assert box["x"] + box["width"] <= page.viewport_size["width"]
    assert page.locator("pre.log", has_text="the end of a very long log line").is_visible()

    # The admin styles moved to a file still apply (they were an inline <style> before).
    page.goto(f"{live_server.url}{reverse('admin:oauth_tokens_oauthcredential_dashboard')}")
    display = page.eval_on_selector(".token-health-grid", "e => getComputedStyle(e).display")
    assert display == "flex"
    assert_no_violations(page, "dashboard again")


def test_htmx_works_under_the_csp(csp_page, live_server, user):
    """The live task page polls with htmx; htmx must not inject its inline indicator style."""
    page = csp_page
    task = CodingTask.objects.create(
        owner=user,
        repo_url="https://github.com/acme/app.git",
        prompt="Fix the tests",
        status=TaskStatus.RUNNING,
        started_at=timezone.now(),
        log="first line\n",
    )
    visit(page, f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice-123")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)

    visit(page, f"{live_server.url}/tasks/{task.pk}/")
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    log = "first line\nsecond line from the worker\n"
    CodingTask.objects.filter(pk=task.pk).update(log=log)
    TaskLogProgress.objects.filter(pk=task.pk).update(chars_written=len(log))  # as TaskLog does
    page.locator("pre.log", has_text="second line from the worker").wait_for(timeout=8000)
    # The indicator rules come from the stylesheet instead.
    hidden = page.evaluate(
        "(() => { const e = document.createElement('span'); e.className = 'htmx-indicator';"
        " document.body.appendChild(e); return getComputedStyle(e).visibility; })()"
    )
    assert hidden == "hidden"
    assert_no_violations(page, "after htmx swaps")
