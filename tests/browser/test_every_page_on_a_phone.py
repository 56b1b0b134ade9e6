"""Every page at 390 px (a phone) and 1280 px: nothing scrolls sideways, the top bar's links
stay on screen, and screenshots of both widths land in test-output/screenshots/."""

from datetime import timedelta
from decimal import Decimal

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from api.models import TokenScope
from api.services import api_token_create
from environments.services import EnvironmentInput, environment_save
from notifications.models import Channel, Delivery, DeliveryStatus, EventKind
from oauth_tokens.models import (
    AuditAction,
    CredentialAuditEvent,
    CredentialKindUsed,
    OAuthCredential,
)
from tasks.models import CodingTask, TaskStatus
from tests.tasks.conftest import task_make

from .conftest import SCREENSHOTS

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LONG_WORD = "averyveryverylongidentifierwithoutanyspaces" * 12
LONG_URL = "https://github.com/acme-corporation-with-a-long-name/" + "repository-" * 8 + "x.git"
LONG_DIFF = (
    "diff --git a/src/a_rather_long_module_name/with_a_long_file_name.py b/src/x.py\n"
    "--- a/src/a_rather_long_module_name/with_a_long_file_name.py\n+++ b/src/x.py\n"
    "@@ -1 +1 @@\n-" + "old " * 80 + "\n+" + LONG_WORD + "\n"
)


@pytest.fixture
def site(db, user, make_credential):
    """Alice, staff and superuser (the widest top bar), with something on every page."""
    user.is_staff = user.is_superuser = True
    user.email = "alice@example.com"
    user.save()
    credential = make_credential(user)
    now = timezone.now()
    done = task_make(
        user,
        repo_url=LONG_URL,
        branch="feature/" + "long-branch-name-" * 4,
        prompt="Refactor the parser so that " + LONG_WORD + "\n" + "and then some words " * 60,
        status=TaskStatus.SUCCEEDED,
        started_at=now - timedelta(minutes=3),
        finished_at=now,
        log="Claude Code started\n" + LONG_WORD + "\n" + "a line of log output " * 40 + "\n",
        result_text="Done: " + LONG_WORD,
        diff=LONG_DIFF,
        changed_files=[{"status": "M", "path": "src/a_rather_long_module_name/" + LONG_WORD}],
        exit_code=0,
        auth_method="oauth",
        auth_source="user",
        usage={
            "cost_usd": Decimal("0.1234"),
            "input_tokens": 1200,
            "output_tokens": 3400,
            "requests": 5,
        },
    )
    for n, status in enumerate(
        [TaskStatus.WAITING, TaskStatus.FAILED, TaskStatus.RUNNING, TaskStatus.QUEUED]
    ):
        task = task_make(
            user,
            repo_url=LONG_URL,
            prompt=f"Task {n}: " + LONG_WORD,
            status=status,
            error_message="Something went wrong: " + LONG_WORD if status == "failed" else "",
            usage={"input_tokens": 100 * (n + 1), "output_tokens": 50, "cost_usd": Decimal("0.01")},
        )
        CodingTask.objects.filter(pk=task.pk).update(created_at=now - timedelta(days=3 * n))
    CredentialAuditEvent.objects.create(
        user=user,
        username=user.username,
        credential_kind=CredentialKindUsed.USER_OAUTH,
        credential_id=credential.pk,
        action=AuditAction.USED,
        task_id=done.pk,
        outcome="used",
        detail="A long detail of what happened: " + "words and more words " * 20,
    )
    Delivery.objects.create(
        key="k1",
        recipient=user,
        event=EventKind.TASK_FAILED,
        channel=Channel.WEBHOOK,
        subject="Task failed: " + LONG_WORD,
        text="x",
        status=DeliveryStatus.FAILED,
        last_error="ConnectionError (ECONNREFUSED: Connection refused)",
    )
    AccessAttempt.objects.create(
        username="mallory",
        ip_address="127.0.0.9",
        user_agent="curl/8.0 " + "x" * 200,
        get_data="",
        post_data="username=mallory",
        http_accept="*/*",
        path_info="/accounts/login/",
        failures_since_start=2,
    )
    api_token_create(owner=user, name="CI-" + LONG_WORD[:96], scope=TokenScope.TASKS)
    environment = environment_save(
        owner=user,
        data=EnvironmentInput(
            name="Node and Python toolchain for " + LONG_WORD[:60],
            image=settings.AGENT_IMAGE,
            setup_script="npm ci && pip install -e .[test] && " + "echo " + LONG_WORD,
            variables="NODE_ENV=test\nLONG=" + LONG_WORD,
            repo_patterns=LONG_URL.removesuffix(".git") + "\nhttps://github.com/acme/*",
        ),
    )
    return {"task": done, "credential": credential, "user": user, "environment": environment}


def site_pages(site) -> dict[str, str]:
    """Screenshot name: path."""
    user, task, credential = site["user"], site["task"], site["credential"]
    return {
        "tasks": "/tasks/",
        "task": f"/tasks/{task.pk}/",
        "task-cancel": f"/tasks/{task.pk}/cancel/",
        "settings": "/accounts/settings/code-agent/",
        "notifications": "/settings/notifications/",
        "usage": "/usage/",
        "api-tokens": "/settings/api-tokens/",
        "environments": "/environments/",
        "environment-new": "/environments/new/",
        "environment": f"/environments/{site['environment'].pk}/",
        "admin": "/admin/",
        "admin-token-health": reverse("admin:oauth_tokens_oauthcredential_dashboard"),
        "admin-credentials": "/admin/oauth_tokens/oauthcredential/",
        "admin-credential": f"/admin/oauth_tokens/oauthcredential/{credential.pk}/change/",
        "admin-audit": "/admin/oauth_tokens/credentialauditevent/",
        "admin-tasks": "/admin/tasks/codingtask/",
        "admin-task": f"/admin/tasks/codingtask/{task.pk}/change/",
        "admin-usage": "/admin/usage/userusage/",
        "admin-deliveries": "/admin/notifications/delivery/",
        "admin-notification-settings": "/admin/notifications/notificationsettings/",
        "admin-github": "/admin/hosting/githubconnection/",
        "admin-preferences": "/admin/accounts/userpreferences/",
        "admin-access-attempts": "/admin/axes/accessattempt/",
        "admin-api-tokens": "/admin/api/apitoken/",
        "admin-users": "/admin/auth/user/",
        "admin-user": f"/admin/auth/user/{user.pk}/change/",
    }


def overflow(page) -> int:
    """How many pixels the document is wider than the window (0: no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


# Controls in the top bars (ours and the admin's) that fall outside the window.
OFF_SCREEN_CONTROLS = """
() => [...document.querySelectorAll('header a, header button, #header a, #header button')]
  .filter(e => e.offsetParent !== null)
  .filter(e => { const r = e.getBoundingClientRect(); return r.left < 0 || r.right > innerWidth; })
  .map(e => e.textContent.trim())
"""


def log_in(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice-123")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def fail_logins(page, times: int) -> None:
    for _ in range(times):
        page.fill("#id_username", "nobody-with-a-rather-long-username-" + "x" * 40)
        page.fill("#id_password", "wrong")
        page.click("button[type=submit]")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1280"])
def test_no_page_scrolls_sideways(browser, live_server, site, viewport, settings):
    settings.AXES_FAILURE_LIMIT = 5
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(10_000)
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    width = viewport["width"]
    problems: list[str] = []

    def check(name: str) -> None:
        page.wait_for_load_state("load")
        page.screenshot(path=str(SCREENSHOTS / f"width-{width}-{name}.png"), full_page=True)
        extra = overflow(page)
        if extra > 0:
            problems.append(f"{name}: {extra} px too wide")
        off = page.evaluate(OFF_SCREEN_CONTROLS)
        if off:
            problems.append(f"{name}: top bar controls off screen: {off}")

    # Public pages: login, login after failures, the lockout page.
    page.goto(f"{live_server.url}/accounts/login/")
    check("login")
    fail_logins(page, 3)
    check("login-failed")
    fail_logins(page, 2)
    assert page.locator("#locked-out").is_visible()
    check("lockout")
    AccessAttempt.objects.filter(username__startswith="nobody").delete()
    console_errors.clear()  # the lockout page's own 429

    log_in(page, live_server.url)
    for name, path in site_pages(site).items():
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None
        assert response.ok, (path, response.status)
        check(name)
    context.close()
    assert not problems, "\n".join(problems)
    assert console_errors == []  # e.g. no favicon.ico 404


def test_the_usage_chart_ends_today_in_view_on_a_phone(browser, live_server, site):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/usage/")
    today = timezone.localdate()
    label = page.locator(".usage-chart svg text").last
    assert label.text_content() == f"{today.day} {today:%b}"
    box = label.bounding_box()
    assert box
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]
    last_bar = page.locator(".usage-chart svg rect.bar").last.bounding_box()
    assert last_bar
    assert last_bar["x"] + last_bar["width"] <= PHONE["width"]
    context.close()


def test_admin_tables_show_every_column_at_1280(browser, live_server, site):
    """The audit log and the credentials list fit beside the admin's navigation at 1280 px."""
    OAuthCredential.objects.filter(pk=site["credential"].pk).update(
        last_refresh_error="OAuth token endpoint said invalid_grant: " + "words " * 30,
        consecutive_failures=3,
    )
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, live_server.url)
    for path in (
        "/admin/oauth_tokens/credentialauditevent/",
        "/admin/oauth_tokens/oauthcredential/",
    ):
        page.goto(f"{live_server.url}{path}")
        hidden = page.evaluate(
            "(() => { const r = document.querySelector('#changelist .results');"
            " return r.scrollWidth - r.clientWidth; })()"
        )
        assert hidden == 0, f"{path}: {hidden} px of the table are out of sight"
        last = page.locator("#result_list thead th").last.bounding_box()
        assert last
        assert last["x"] + last["width"] <= DESKTOP["width"]

    # The dashboard's breadcrumbs look like every other admin page's.
    page.goto(f"{live_server.url}{reverse('admin:oauth_tokens_oauthcredential_dashboard')}")
    crumbs = page.locator("ol.breadcrumbs")
    assert crumbs.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert page.locator("ol.breadcrumbs li[aria-current=page]").text_content() == "Token health"
    page.screenshot(path=str(SCREENSHOTS / "width-1280-admin-token-health-breadcrumbs.png"))
    context.close()
