"""The Code agent settings page in a real browser: live validation, saving, status, refresh."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.selectors import preferences_get
from oauth_tokens.models import OAuthCredential

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

API_KEY = "sk-ant-api03-browser-test-key-0123456789abcdefghijklmnop-WXYZ"


def cli_file(refresh_token: str, *, access: str = "sk-ant-oat01-browser-access-token-AAAA") -> str:
    expires_ms = int((timezone.now() + timedelta(hours=8)).timestamp() * 1000)
    return json.dumps(
        {
            "claudeAiOauth": {
                "accessToken": access,
                "refreshToken": refresh_token,
                "expiresAt": expires_ms,
                "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
                "subscriptionType": "max",
            }
        },
        indent=2,
    )


def open_settings(page: Page) -> None:
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Code agent")).to_be_visible()
    # A marker that a full page load would wipe out: proves the updates came over HTMX.
    page.evaluate("window.__noReload = true")


def still_same_page(page: Page) -> bool:
    return page.evaluate("window.__noReload === true")


def test_oauth_flow_live_validation_save_status_and_refresh(
    logged_in_page, screenshot, oauth_settings, token_server, user
):
    page = logged_in_page
    open_settings(page)
    method = page.locator("#auth-method")
    expect(method).to_contain_text("None: tasks cannot start")
    screenshot("01-empty")

    page.get_by_label("Use Claude OAuth (Claude Max subscribers)").check()

    tokens = page.locator("#id_oauth_tokens")
    feedback = page.locator("#oauth_tokens-feedback")
    tokens.press_sequentially('{"claudeAiOauth": {"accessToken": "paste-here",}')
    expect(feedback).to_contain_text("The input is not valid JSON")
    expect(feedback).to_contain_text("line 1, column")
    assert still_same_page(page)
    screenshot("02-invalid-json")

    # A wrong field is named, with the reason.
    tokens.fill(
        '{"claudeAiOauth": {"accessToken": "sk-ant-oat01-' + "x" * 40 + '", '
        '"scopes": ["user:profile"]}}'
    )
    expect(feedback).to_contain_text("claudeAiOauth.scopes")
    expect(feedback).to_contain_text("user:inference")

    refresh_token = token_server.issue()
    tokens.fill(cli_file(refresh_token))
    expect(feedback).to_contain_text("refreshable (access token + refresh token)")
    expect(feedback).to_contain_text("Subscription")
    expect(feedback).to_contain_text("max")
    expect(feedback).to_contain_text(re.compile(r"Expires\s*in 7\shours"))
    assert still_same_page(page)

    env = page.locator("#id_agent_env")
    env_feedback = page.locator("#agent_env-feedback")
    env.fill('{"ANTHROPIC_API_KEY": "sk-ant-api03-nope"}')
    expect(env_feedback).to_contain_text("use the API key field")
    env.fill('{"NODE_ENV": "test", "GITHUB_TOKEN": "ghp_browserhidden"}')
    expect(env_feedback).to_contain_text("2 variables")
    screenshot("03-understood")

    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Settings saved")
    expect(page.locator(".messages")).to_contain_text("Claude OAuth turned on")

    page.reload()
    html = page.content()
    assert refresh_token not in html
    assert "sk-ant-oat01-browser-access-token" not in html
    assert "ghp_browserhidden" not in html
    status = page.locator("#token-status")
    expect(status).to_contain_text("Saved tokens")
    expect(status).to_contain_text("Refreshable")
    expect(status).to_contain_text("Entered by the user")
    expect(status).to_contain_text("Last refreshed")
    expect(method).to_contain_text("Your Claude OAuth tokens")
    expect(page.locator("#id_oauth_tokens")).to_have_value("")
    screenshot("04-saved-status")

    page.evaluate("window.__noReload = true")
    page.get_by_role("button", name="Refresh now").click()
    expect(status).to_contain_text("Refreshed. The new access token expires in")
    assert still_same_page(page)
    assert token_server.refresh_count == 1
    new_access = token_server.last_grant["access_token"]
    assert new_access not in page.content()
    assert OAuthCredential.objects.get(owner=user).access_token == new_access
    screenshot("05-refreshed")

    # The chain is dead now (single-use refresh tokens): the failure is shown, and the method
    # panel (updated out of band) still says what the next task will do.
    token_server.revoke(OAuthCredential.objects.get(owner=user).refresh_token)
    # A second click right away is answered by the cooldown, without a refresh.
    page.get_by_role("button", name="Refresh now").click()
    expect(status).to_contain_text("“Refresh now” works again in")
    assert token_server.refresh_count == 1
    OAuthCredential.objects.filter(owner=user).update(last_refresh_attempt_at=None)
    page.get_by_role("button", name="Refresh now").click()
    expect(status).to_contain_text("The refresh failed")
    expect(status).to_contain_text("paste new tokens below before then")
    expect(status.locator(".badge")).to_have_text("Invalid")
    expect(page.get_by_role("button", name="Refresh now")).to_have_count(0)  # only new tokens help
    expect(method).to_contain_text("can no longer be refreshed")
    assert still_same_page(page)
    screenshot("06-refresh-failed")


def test_api_key_is_write_only_and_wrong_input_is_refused(logged_in_page, screenshot, user):
    page = logged_in_page
    open_settings(page)
    key = page.locator("#id_api_key")
    feedback = page.locator("#api_key-feedback")

    key.fill("sk-ant-oat01-" + "o" * 60)
    expect(feedback).to_contain_text("Paste it in the Claude OAuth tokens box instead")
    assert still_same_page(page)
    screenshot("07-api-key-wrong-box")

    key.fill(API_KEY)
    expect(feedback).to_contain_text("an Anthropic API key ending in …WXYZ")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("API key ending in …WXYZ saved")

    page.reload()
    assert API_KEY not in page.content()
    assert "browser-test-key" not in page.content()
    expect(page.locator("#auth-method")).to_contain_text("Your API key (ending in …WXYZ)")
    expect(page.get_by_text("A key ending in …WXYZ is saved.")).to_be_visible()
    screenshot("08-api-key-saved")

    page.get_by_role("button", name="Remove key").click()
    expect(page.locator(".messages")).to_contain_text("Your API key was removed.")
    expect(page.locator("#auth-method")).to_contain_text("None: tasks cannot start")
    assert preferences_get(user=user).api_key == ""


def test_toggle_on_without_tokens_explains_what_happens(logged_in_page, screenshot):
    page = logged_in_page
    open_settings(page)
    page.get_by_label("Use Claude OAuth (Claude Max subscribers)").check()
    page.get_by_role("button", name="Save settings").click()
    method = page.locator("#auth-method")
    expect(method).to_contain_text("Not ready")
    expect(method).to_contain_text("Missing OAuth tokens")
    expect(method).to_contain_text("no tokens are saved")
    screenshot("09-oauth-on-no-tokens")


def test_invalid_save_shows_every_error_and_changes_nothing(logged_in_page, screenshot, user):
    page = logged_in_page
    open_settings(page)
    page.get_by_label("Use Claude OAuth (Claude Max subscribers)").check()
    page.locator("#id_oauth_tokens").fill('{"access_token": "sk-ant-ort01-' + "r" * 40 + '"}')
    page.locator("#id_api_key").fill("hello")
    page.locator("#id_agent_env").fill('{"PORT": 8080}')
    page.get_by_role("button", name="Save settings").click()

    expect(page.locator(".summary-box")).to_contain_text("Nothing was saved")
    expect(page.locator("#oauth_tokens-feedback")).to_contain_text("not an access token")
    expect(page.locator("#api_key-feedback")).to_contain_text("start with sk-ant-api")
    expect(page.locator("#agent_env-feedback")).to_contain_text("Put it in quotes")
    # Nothing typed comes back (it may hold secrets); the page says what to paste again.
    expect(page.locator("#id_oauth_tokens")).to_have_value("")
    expect(page.locator("#id_agent_env")).to_have_value("")
    expect(page.locator("#id_api_key")).to_have_value("")
    expect(page.locator(".summary-box")).to_contain_text(
        "paste the OAuth tokens, API key, environment variables again"
    )
    screenshot("10-save-rejected")
    preferences = preferences_get(user=user)
    assert preferences.use_oauth is False
    assert not OAuthCredential.objects.filter(owner=user).exists()


def test_form_works_without_javascript(browser, live_server, user, screenshot):
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1200, "height": 900}
    )
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "pw-alice-123")
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/accounts/settings/code-agent/")
        # Copy buttons need script, so they stay hidden.
        expect(page.get_by_role("button", name="Copy")).to_have_count(0)
        page.locator("#id_oauth_tokens").fill("not json")
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#oauth_tokens-feedback")).to_contain_text("not valid JSON")
        page.locator("#id_oauth_tokens").fill("sk-ant-oat01-" + "s" * 80)
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator(".messages")).to_contain_text("OAuth tokens saved")
        expect(page.locator("#token-status")).to_contain_text("Long-lived token")
        assert "s" * 80 not in page.content()
    finally:
        context.close()
