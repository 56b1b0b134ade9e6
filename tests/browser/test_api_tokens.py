"""The API tokens page in a real browser: make a token over HTMX (shown once), use it, revoke."""

import re

import pytest
import requests
from playwright.sync_api import expect

from api.models import ApiToken

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_make_use_and_revoke_a_token(logged_in_page, live_server, screenshot):
    page = logged_in_page
    page.goto(f"{live_server.url}/accounts/settings/code-agent/")
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens", exact=True)).to_be_visible()
    page.evaluate("window.__noReload = true")
    page.fill("#id_name", "laptop script")
    page.get_by_label("Read + tasks").check()
    page.get_by_role("button", name="Make the token").click()
    secret = page.locator("#new-token").inner_text()
    assert re.fullmatch(r"crt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", secret)
    assert page.evaluate("window.__noReload === true")  # the card came over HTMX
    expect(page.locator("#api-token-list")).to_contain_text("laptop script")
    screenshot("api-tokens-made")
    answer = requests.get(
        f"{live_server.url}/api/tasks", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert answer.status_code == 200
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("#api-token-list")).to_contain_text("Revoked")
    assert page.locator("#new-token").count() == 0  # never shown again
    assert ApiToken.objects.get().revoked_at is not None
    again = requests.get(
        f"{live_server.url}/api/tasks", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert again.status_code == 401


def test_the_api_documentation_page_works_under_the_content_security_policy(page, live_server):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server.url}/api/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Submit a task")).to_be_visible()
    assert errors == []
