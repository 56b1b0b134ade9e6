"""Settings, Code agent: the page, live validation, saving, status, refresh and removal."""

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import preferences_get
from common.templatetags.text_marks import code_marks
from oauth_tokens.formats import TokenFormatError, credential_input_parse
from oauth_tokens.models import CredentialSource, CredentialStatus, OAuthCredential

pytestmark = pytest.mark.django_db

PAGE = reverse("accounts:code_agent_settings")
REFRESH = reverse("accounts:code_agent_tokens_refresh")
HTMX: dict[str, Any] = {"HTTP_HX_REQUEST": "true"}

ACCESS = "sk-ant-oat01-page-test-access-token-0123456789"
SETUP_TOKEN = "sk-ant-oat01-setup-token-for-the-page-0123456789abcdef"
API_KEY = "sk-ant-api03-page-test-api-key-0123456789abcdefghij-9XYZ"
ENV_SECRET = "ghp_envvaluemustnotshow123"


def validate_url(field: str) -> str:
    return reverse("accounts:code_agent_settings_validate", args=[field])


def cli_json(*, refresh: str = "sk-ant-ort01-page-test-refresh-token-987654321", **inner) -> str:
    data = {
        "accessToken": ACCESS,
        "refreshToken": refresh,
        "expiresAt": int((timezone.now() + timedelta(hours=5)).timestamp() * 1000),
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max",
        **inner,
    }
    return json.dumps({"claudeAiOauth": data})


def live(client: Client, field: str, value: str) -> str:
    response = client.post(validate_url(field), {field: value}, **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def save(client: Client, **fields) -> Any:
    data = {"oauth_tokens": "", "api_key": "", "agent_env": "", **fields}
    if data.pop("use_oauth", False):
        data["use_oauth"] = "on"
    return client.post(PAGE, data)


# --- the page ---------------------------------------------------------------------------------


def test_page_needs_a_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_nav_links_to_the_settings_page(user_client):
    html = user_client.get(PAGE).content.decode()
    assert f'href="{PAGE}" aria-current="page">Settings</a>' in html


def test_page_shows_the_toggle_fields_and_instructions(user_client):
    html = user_client.get(PAGE).content.decode()
    assert "Use Claude OAuth (Claude Max subscribers)" in html
    assert 'name="oauth_tokens"' in html
    assert 'name="agent_env"' in html
    assert 'type="password" name="api_key"' in html
    # Instructions, each with a copy button.
    for command in (
        "claude setup-token",
        "cat ~/.claude/.credentials.json",
        'security find-generic-password -s "Claude Code-credentials" -w',
    ):
        assert command in html or command.replace('"', "&quot;") in html
    assert html.count("data-copy=") == 3
    assert "Keychain Access" in html
    assert "Show password" in html
    # Live validation is wired to the server, debounced, one field at a time.
    assert f'hx-post="{validate_url("oauth_tokens")}"' in html
    assert 'hx-trigger="input changed delay:400ms"' in html
    assert 'hx-params="oauth_tokens"' in html
    assert "Leave it empty to keep the saved tokens" in html


def test_every_form_carries_csrf_and_htmx_sends_it_in_a_header(user_client):
    html = user_client.get(PAGE).content.decode()
    # The settings form and the four small action forms.
    assert html.count('name="csrfmiddlewaretoken"') >= 6  # + the log-out form
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


@pytest.mark.parametrize(
    "url",
    [
        PAGE,
        validate_url("oauth_tokens"),
        REFRESH,
        reverse("accounts:code_agent_tokens_remove"),
        reverse("accounts:code_agent_api_key_remove"),
        reverse("accounts:code_agent_env_remove"),
    ],
)
def test_posts_without_csrf_token_are_refused(user, url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(url, {"oauth_tokens": "x"}, **HTMX).status_code == 403


def test_htmx_request_with_csrf_header_is_accepted(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(PAGE)
    token = client.cookies["csrftoken"].value
    response = client.post(
        validate_url("oauth_tokens"), {"oauth_tokens": "{"}, HTTP_X_CSRFTOKEN=token, **HTMX
    )
    assert response.status_code == 200
    assert "not valid JSON" in response.content.decode()


# --- live validation of the tokens ------------------------------------------------------------


def test_live_invalid_json_says_where(user_client):
    html = live(user_client, "oauth_tokens", '{"claudeAiOauth": {"accessToken": "x",}')
    assert "The input is not valid JSON" in html
    assert "line 1, column" in html
    assert 'role="alert"' in html


def test_live_names_the_wrong_field_and_why(user_client):
    html = live(user_client, "oauth_tokens", cli_json(expiresAt=1_700_000))
    assert "<code>claudeAiOauth.expiresAt</code>" in html
    assert "seconds or milliseconds" in html


def test_live_shows_what_was_understood_without_the_tokens(user_client):
    html = live(user_client, "oauth_tokens", cli_json())
    assert "the Claude CLI&#x27;s credentials file (claudeAiOauth, camelCase)" in html
    assert "refreshable (access token + refresh token)" in html
    assert "in 4\xa0hours, 59\xa0minutes" in html
    assert "user:inference, user:profile" in html
    assert "<dt>Subscription</dt><dd>max</dd>" in html
    assert "Not saved yet" in html
    assert ACCESS not in html
    assert "sk-ant-ort01-page-test" not in html


def test_live_accepts_flat_json_and_a_bare_setup_token(user_client):
    flat = json.dumps(
        {
            "access_token": ACCESS,
            "refresh_token": "sk-ant-ort01-r-0123456789abcdef",
            "expires_at": 4102000000,
        }
    )
    assert "JSON with access_token (snake_case)" in live(user_client, "oauth_tokens", flat)
    html = live(user_client, "oauth_tokens", SETUP_TOKEN)
    assert "a token on its own, as <code>claude setup-token</code> prints it" in html
    assert "long-lived token, no refresh token" in html
    assert "never (no expiry given)" in html


def test_live_warns_about_an_expired_token_that_cannot_be_refreshed(user_client):
    html = live(
        user_client,
        "oauth_tokens",
        json.dumps({"access_token": ACCESS, "expires_at": 1_600_000_000}),
    )
    assert "Tasks would fail with this token" in html
    assert "has no refresh token to renew it" in html


def test_live_empty_field_says_saved_tokens_are_kept(user_client, user, make_credential):
    assert "Paste your tokens to see" in live(user_client, "oauth_tokens", "  ")
    make_credential(user)
    assert "Empty: your saved tokens are kept." in live(user_client, "oauth_tokens", "")


@pytest.mark.parametrize(
    "raw",
    [
        "{",
        "[]",
        '{"claudeAiOauth": null}',
        '{"access_token": "sk-ant-api03-wrong-box-0123456789"}',
        '{"access_token": "sk-ant-ort01-swapped-0123456789"}',
        cli_json(scopes=["user:profile"]),
        cli_json(expiresAt=True),
        "sk-ant-ort01-alone-0123456789",
        "sk-ant-oat01-short",
    ],
)
def test_live_validation_and_saving_give_the_parsers_message(user_client, user, raw):
    with pytest.raises(TokenFormatError) as parsed:
        credential_input_parse(raw=raw)
    # As the page writes it: escaped, with `command` marks as <code>.
    expected = str(code_marks(parsed.value.message))
    assert expected in live(user_client, "oauth_tokens", raw)
    response = save(user_client, oauth_tokens=raw)
    assert response.status_code == 200
    assert expected in response.content.decode()
    assert not OAuthCredential.objects.filter(owner=user).exists()


def test_validate_unknown_field_is_404_and_get_is_refused(user_client):
    assert user_client.post(validate_url("use_oauth"), {}).status_code == 404
    assert user_client.get(validate_url("oauth_tokens")).status_code == 405


# --- live validation of the API key and the agent environment ---------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("sk-ant-oat01-" + "a" * 60, "Paste it in the Claude OAuth tokens box instead"),
        ("sk-ant-ort01-" + "a" * 60, "Paste the whole credentials JSON in the Claude OAuth"),
        (cli_json(), "This looks like JSON, not an API key"),
        ("ANTHROPIC_API_KEY=" + API_KEY, "without a variable name"),
        ("hello", "This is not an Anthropic API key"),
        ("sk-ant-api03-short", "it looks cut off"),
        ("sk-ant-api03-" + "a" * 20 + " " + "b" * 20, "space or line break (at character 34)"),
    ],
)
def test_live_api_key_rejects_wrong_input_without_echoing_it(user_client, raw, message):
    html = live(user_client, "api_key", raw)
    assert message in html
    assert raw not in html
    assert "aaaaaaaaaa" not in html


def test_live_api_key_shows_only_the_last_four(user_client):
    html = live(user_client, "api_key", API_KEY)
    assert "an Anthropic API key ending in …9XYZ" in html
    assert API_KEY not in html


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("ANTHROPIC_API_KEY", "use the API key field on this page instead"),
        ("ANTHROPIC_AUTH_TOKEN", "use the API key field"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "use the Claude OAuth tokens box"),
        ("CLAUDE_ACCESS_TOKEN", "use the Claude OAuth tokens box"),
        ("CLAUDE_REFRESH_TOKEN", "use the Claude OAuth tokens box"),
        ("CLAUDE_EXPIRES_AT", "use the Claude OAuth tokens box"),
        ("CLAUDE_USE_OAUTH", "checkbox"),
        ("ANTHROPIC_BASE_URL", "the server sets it"),
        ("HOME", "the server sets it"),
        ("PATH", "the server sets it"),
        ("REPO_URL", "the server sets it"),
        ("REPO_BRANCH", "the server sets it"),
        ("CLAUDE_CONFIG_DIR", "the server sets it"),
        ("anthropic_api_key", "use the API key field"),
    ],
)
def test_live_env_refuses_names_that_override_auth(user_client, name, advice):
    html = live(user_client, "agent_env", json.dumps({"OK": "1", name: "value"}))
    assert f"<code>{name}</code>" in html
    assert "would override how the agent authenticates or runs" in html
    assert advice in html


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"A": "1",}', "The input is not valid JSON"),
        ('["A"]', "Expected a JSON object of names to values"),
        ('{"1ABC": "x"}', "Not a valid variable name"),
        ('{"MY-VAR": "x"}', "Not a valid variable name"),
        ('{"": "x"}', "A variable name is empty"),
        ('{"PORT": 8080}', 'Put it in quotes, for example "8080"'),
        ('{"NESTED": {"a": "b"}}', "Expected text, found an object"),
        ('{"A": "1", "A": "2"}', "This name appears twice"),
        ('{"A": "x\\u0000y"}', "NUL character"),
        (json.dumps({"BIG": "x" * 4097}), "at most 4,096 (4 KiB)"),
        (json.dumps({f"V{i}": "x" for i in range(51)}), "There are 51 variables; at most 50"),
    ],
)
def test_live_env_says_what_is_wrong(user_client, raw, message):
    html = live(user_client, "agent_env", raw)
    assert message.replace('"', "&quot;") in html


def test_live_env_lists_the_names_understood(user_client):
    html = live(user_client, "agent_env", '{"NODE_ENV": "test", "GITHUB_TOKEN": "ghp_x"}')
    assert "2 variables" in html
    assert "NODE_ENV, GITHUB_TOKEN" in html
    assert "removes the saved ones" in live(user_client, "agent_env", "{}")


# --- saving -----------------------------------------------------------------------------------


def test_saving_everything_says_so_and_stores_it(user_client, user):
    response = save(
        user_client,
        use_oauth=True,
        oauth_tokens=cli_json(),
        api_key=API_KEY,
        agent_env='{"NODE_ENV": "test"}',
    )
    assert response.status_code == 302
    assert response["Location"] == PAGE
    html = user_client.get(PAGE).content.decode()
    assert "Settings saved: Claude OAuth turned on; API key ending in …9XYZ saved;" in html
    assert "1 environment variable saved; OAuth tokens saved (refreshable" in html
    preferences = preferences_get(user=user)
    assert preferences.use_oauth is True
    assert preferences.api_key == API_KEY
    assert preferences.api_key_last4 == "9XYZ"
    assert preferences.agent_env == {"NODE_ENV": "test"}
    credential = OAuthCredential.objects.get(owner=user)
    assert credential.access_token == ACCESS
    assert credential.source == CredentialSource.USER


def test_saved_secrets_never_come_back_to_the_browser(user_client, user):
    save(
        user_client,
        use_oauth=True,
        oauth_tokens=cli_json(),
        api_key=API_KEY,
        agent_env=json.dumps({"GITHUB_TOKEN": ENV_SECRET}),
    )
    html = user_client.get(PAGE).content.decode()
    for secret in (ACCESS, "sk-ant-ort01-page-test", API_KEY, API_KEY[:-4], ENV_SECRET):
        assert secret not in html
    # Status instead of the values.
    assert "Saved tokens" in html
    assert "Refreshable (access + refresh token)" in html
    assert "A key ending in <code>…9XYZ</code> is saved." in html
    assert "<code>GITHUB_TOKEN</code>" in html
    assert 'name="oauth_tokens"' in html
    assert f">{ACCESS}<" not in html


def test_an_invalid_field_saves_nothing_and_every_error_is_shown(user_client, user):
    response = save(
        user_client,
        use_oauth=True,
        oauth_tokens="{",
        api_key="sk-ant-oat01-" + "k" * 50,
        agent_env='{"ANTHROPIC_API_KEY": "x"}',
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was saved." in html
    assert "Fix the 3 problems marked below" in html
    assert "The input is not valid JSON" in html
    assert "Paste it in the Claude OAuth tokens box instead" in html
    assert "use the API key field on this page instead" in html
    assert "k" * 50 not in html  # the key field is never filled back in
    preferences = preferences_get(user=user)
    assert preferences.use_oauth is False
    assert not preferences.has_api_key
    assert preferences.agent_env is None
    assert not OAuthCredential.objects.filter(owner=user).exists()


def test_valid_fields_are_not_saved_when_one_is_invalid(user_client, user):
    response = save(
        user_client,
        use_oauth=True,
        oauth_tokens=cli_json(),
        api_key=API_KEY,
        agent_env='{"PORT": 1}',
    )
    html = response.content.decode()
    assert "Fix the 1 problem marked below" in html
    assert "paste the OAuth tokens, API key, environment variables again" in html
    assert not OAuthCredential.objects.filter(owner=user).exists()
    assert not preferences_get(user=user).has_api_key


def test_bad_input_loses_nothing_already_saved(user_client, user):
    save(
        user_client,
        use_oauth=True,
        oauth_tokens=cli_json(),
        api_key=API_KEY,
        agent_env='{"A": "1"}',
    )
    save(
        user_client,
        use_oauth=False,
        oauth_tokens='{"access_token": 5}',
        api_key="nope",
        agent_env="[]",
    )
    preferences = preferences_get(user=user)
    assert preferences.use_oauth is True
    assert preferences.api_key == API_KEY
    assert preferences.agent_env == {"A": "1"}
    assert OAuthCredential.objects.get(owner=user).access_token == ACCESS


def test_empty_fields_keep_what_is_saved(user_client, user):
    save(
        user_client,
        use_oauth=True,
        oauth_tokens=cli_json(),
        api_key=API_KEY,
        agent_env='{"A": "1"}',
    )
    response = save(user_client, use_oauth=False)
    assert response.status_code == 302
    assert "Settings saved: Claude OAuth turned off." in user_client.get(PAGE).content.decode()
    preferences = preferences_get(user=user)
    assert preferences.use_oauth is False
    assert preferences.api_key == API_KEY
    assert preferences.agent_env == {"A": "1"}
    assert OAuthCredential.objects.get(owner=user).access_token == ACCESS


def test_saving_with_no_change_says_so(user_client):
    save(user_client)
    assert "Settings saved. Nothing had changed." in user_client.get(PAGE).content.decode()


def test_empty_env_object_removes_the_variables(user_client, user):
    save(user_client, agent_env='{"A": "1"}')
    save(user_client, agent_env="{}")
    assert preferences_get(user=user).agent_env is None
    assert "extra environment variables removed" in user_client.get(PAGE).content.decode()


def test_new_tokens_replace_old_ones_and_reset_their_health(user_client, user, make_credential):
    make_credential(user, status=CredentialStatus.INVALID, last_refresh_error="dead")
    save(user_client, oauth_tokens=SETUP_TOKEN)
    credential = OAuthCredential.objects.get(owner=user)
    assert credential.access_token == SETUP_TOKEN
    assert credential.refresh_token == ""
    assert credential.status == CredentialStatus.VALID
    assert credential.last_refresh_error == ""


def test_saving_never_logs_a_secret(user_client, caplog):
    caplog.set_level(logging.DEBUG)
    save(
        user_client,
        use_oauth=True,
        oauth_tokens=cli_json(),
        api_key=API_KEY,
        agent_env=json.dumps({"GITHUB_TOKEN": ENV_SECRET}),
    )
    text = caplog.text
    for secret in (ACCESS, "sk-ant-ort01-page", API_KEY, ENV_SECRET):
        assert secret not in text


def test_the_page_works_without_javascript(user_client):
    # A plain form post (no HX-Request header) gets the whole page back with the errors.
    response = user_client.post(PAGE, {"oauth_tokens": "not json"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert "The input is not valid JSON" in html
    # What was typed is not rendered back (it may hold a secret); the page asks for it again.
    assert "not json</textarea>" not in html
    assert "paste the OAuth tokens again" in html


# --- removing ---------------------------------------------------------------------------------


def test_remove_buttons_remove_and_say_so(user_client, user):
    save(user_client, oauth_tokens=SETUP_TOKEN, api_key=API_KEY, agent_env='{"A": "1"}')
    for url_name, message in (
        ("accounts:code_agent_tokens_remove", "Your OAuth tokens were removed."),
        ("accounts:code_agent_api_key_remove", "Your API key was removed."),
        ("accounts:code_agent_env_remove", "Your extra environment variables were removed."),
    ):
        response = user_client.post(reverse(url_name), follow=True)
        assert message in response.content.decode()
    preferences = preferences_get(user=user)
    assert not preferences.has_api_key
    assert preferences.api_key == ""
    assert preferences.agent_env is None
    assert not OAuthCredential.objects.filter(owner=user).exists()


def test_remove_with_nothing_saved_says_so(user_client):
    response = user_client.post(reverse("accounts:code_agent_api_key_remove"), follow=True)
    assert "No API key was saved." in response.content.decode()
    response = user_client.post(reverse("accounts:code_agent_tokens_remove"), follow=True)
    assert "No OAuth tokens were saved." in response.content.decode()


def test_remove_only_touches_your_own(user_client, other_user, make_credential):
    make_credential(other_user)
    user_client.post(reverse("accounts:code_agent_tokens_remove"))
    assert OAuthCredential.objects.filter(owner=other_user).exists()


def test_remove_needs_post(user_client):
    assert user_client.get(reverse("accounts:code_agent_tokens_remove")).status_code == 405


# --- status and "Refresh now" -----------------------------------------------------------------


def test_status_shows_health_without_tokens(user_client, user, make_credential):
    credential = make_credential(
        user,
        expires_in=-600,
        status=CredentialStatus.REFRESH_FAILED,
        last_refresh_error="OAuth token endpoint unreachable",
        last_refreshed_at=timezone.now() - timedelta(hours=3),
    )
    html = user_client.get(PAGE).content.decode()
    assert "Refresh failed" in html
    assert "expired 10\xa0minutes ago" in html
    assert "3\xa0hours ago" in html
    assert "OAuth token endpoint unreachable" in html
    assert "Refresh now" in html
    assert "Remove tokens" in html
    assert credential.access_token not in html
    assert credential.refresh_token not in html


def test_setup_tokens_have_no_refresh_button(user_client, user, make_credential):
    make_credential(user, refresh=False, expires_in=None)
    html = user_client.get(PAGE).content.decode()
    assert "Long-lived token (claude setup-token)" in html
    assert "never (no expiry given)" in html
    assert "Refresh now" not in html
    response = user_client.post(REFRESH, **HTMX)
    assert "cannot be refreshed: there is no refresh token" in response.content.decode()


def test_refresh_now_refreshes_and_shows_the_outcome(
    user_client, user, make_credential, oauth_settings, token_server
):
    credential = make_credential(user, expires_in=3600)
    response = user_client.post(REFRESH, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Refreshed. The new access token expires in 7\xa0hours" in html
    assert '<div id="token-status"' in html
    assert 'id="auth-method" aria-live="polite" hx-swap-oob="true"' in html
    assert "<html" not in html  # a fragment, not a page
    assert token_server.refresh_count == 1
    credential.refresh_from_db()
    assert credential.access_token == token_server.last_grant["access_token"]
    assert credential.access_token not in html
    assert credential.refresh_token not in html
    assert "just now" in html  # last refreshed


def test_refresh_now_with_a_dead_refresh_token_says_to_paste_new_ones(
    user_client, user, make_credential, oauth_settings, token_server
):
    credential = make_credential(user, expires_in=-60)
    token_server.revoke(credential.refresh_token)
    html = user_client.post(REFRESH, **HTMX).content.decode()
    assert "The refresh failed (the reason is under “Last error”). Paste new tokens below." in html
    assert "invalid_grant" in html
    assert ">Invalid<" in html
    assert "Refresh now" not in html  # it cannot help any more


def test_refresh_now_failure_of_a_still_valid_token_says_it_still_works(
    user_client, user, make_credential, oauth_settings, token_server
):
    oauth_settings.CLAUDE_OAUTH_MAX_ATTEMPTS = 1
    make_credential(user, expires_in=3600)
    token_server.fail_next(503)
    html = user_client.post(REFRESH, **HTMX).content.decode()
    assert "The refresh failed" in html
    assert "The current access token still works until it expires." in html


def test_refresh_now_without_htmx_redirects_with_a_message(
    user_client, user, make_credential, oauth_settings, token_server
):
    make_credential(user)
    response = user_client.post(REFRESH, follow=True)
    assert response.redirect_chain[-1][0] == PAGE
    assert "Refreshed. The new access token expires" in response.content.decode()


def test_refresh_now_with_nothing_saved(user_client):
    html = user_client.post(REFRESH, **HTMX).content.decode()
    assert "No OAuth tokens are saved, so there is nothing to refresh." in html


# --- which method will run the next task ------------------------------------------------------


def method_panel(client: Client) -> str:
    html = client.get(PAGE).content.decode()
    start = html.index('id="auth-method"')
    return html[start : html.index("</section>", start)]


def test_method_none_explains_what_to_do(user_client):
    panel = method_panel(user_client)
    assert "None: tasks cannot start" in panel
    assert "Not ready" in panel
    assert "No way to authenticate" in panel


def test_method_oauth_on_without_tokens_says_tokens_are_missing(user_client):
    save(user_client, use_oauth=True)
    panel = method_panel(user_client)
    assert "Not ready" in panel
    assert "Missing OAuth tokens: Claude OAuth is turned on in your settings but no tokens" in panel


def test_method_follows_the_priority_order(user_client, user, settings, make_credential):
    save(user_client, api_key=API_KEY)
    panel = method_panel(user_client)
    assert "Your API key (ending in …9XYZ)" in panel
    assert '<li class="current" aria-current="true"><strong>An API key</strong>' in panel

    save(user_client, use_oauth=True)  # on, but no tokens: falls back to the key, and says so
    panel = method_panel(user_client)
    assert "Your API key (ending in …9XYZ)" in panel
    assert "Claude OAuth is on but cannot be used" in panel

    make_credential(user)
    panel = method_panel(user_client)
    assert "Your Claude OAuth tokens" in panel
    assert "user OAuth is on and tokens are saved" in panel
    assert '<li class="current" aria-current="true"><strong>Your Claude OAuth tokens' in panel


def test_method_global_oauth_and_server_key(user_client, settings, token_server):
    settings.ANTHROPIC_API_KEY = "sk-ant-api03-server-key-0000000000000000000000"
    assert "The server&#x27;s API key (ANTHROPIC_API_KEY)" in method_panel(user_client)
    settings.CLAUDE_USE_OAUTH = True
    settings.CLAUDE_ACCESS_TOKEN = "sk-ant-oat01-global-access-0123456789"
    settings.CLAUDE_REFRESH_TOKEN = token_server.issue()
    settings.CLAUDE_EXPIRES_AT = "2099-01-01T00:00:00Z"
    panel = method_panel(user_client)
    assert "The server&#x27;s global Claude OAuth tokens" in panel
    assert "CLAUDE_USE_OAUTH=true on the server" in panel
    assert "sk-ant-oat01-global" not in panel


def test_method_warns_when_saved_tokens_cannot_be_renewed(user_client, user, make_credential):
    save(user_client, use_oauth=True)
    make_credential(user, status=CredentialStatus.INVALID, last_refresh_error="invalid_grant")
    panel = method_panel(user_client)
    assert "Your Claude OAuth tokens" in panel
    assert "can no longer be refreshed, so they stop working when the access token expires" in panel


def test_saved_variables_that_break_a_name_rule_are_reported_not_hidden(user_client, user):
    """Variables saved before the issue-11 name rules stay saved (the user decides), but the page
    says which ones tasks leave out, and why."""
    prefs = preferences_get(user=user)
    prefs.agent_env = {
        "GITHUB_TOKEN": "ghp_xxxxxxxxxx",
        "GIT_CONFIG_COUNT": "1",
        "https_proxy": "http://x",
    }
    prefs.save()
    html = user_client.get(PAGE).content.decode()
    report = html.split('id="agent-env-problems"', 1)[1].split("</div>", 1)[0]
    assert "<code>GIT_CONFIG_COUNT</code>" in report
    assert "run other code" in report
    assert "<code>https_proxy</code>" in report
    assert "network traffic" in report
    assert "GITHUB_TOKEN" not in report
    assert "ghp_xxxxxxxxxx" not in html
    assert "http://x" not in html
    # Saving clean variables clears the report.
    save(user_client, agent_env='{"GITHUB_TOKEN": "ghp_yyyyyyyyyy"}')
    assert 'id="agent-env-problems"' not in user_client.get(PAGE).content.decode()
