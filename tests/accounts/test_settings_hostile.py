"""The Code agent settings page under hostile input: every bad input a clear field
error and nothing saved; secrets never rendered back; no caching; a refresh cooldown; a method
card that does not say Ready when the next task will fail."""

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.parsers import (
    AGENT_ENV_RULES,
    SettingsInputError,
    agent_env_parse,
    agent_env_saved_problems,
    agent_env_unprotected,
    agent_env_usable,
)
from accounts.selectors import agent_env_for_task, preferences_get
from common.logging import REDACT_MIN_CHARS
from oauth_tokens.models import CredentialStatus, OAuthCredential

pytestmark = pytest.mark.django_db

PAGE = reverse("accounts:code_agent_settings")
REFRESH = reverse("accounts:code_agent_tokens_refresh")
HTMX: dict[str, Any] = {"HTTP_HX_REQUEST": "true"}
ACCESS = "sk-ant-oat01-hostile-page-access-token-0123456789"
REFRESH_TOKEN = "sk-ant-ort01-hostile-page-refresh-token-0123456789"
ENV_SECRET = "ghp_hostile_env_value_that_must_not_show"
HUGE = "9" * 5000


def validate_url(field: str) -> str:
    return reverse("accounts:code_agent_settings_validate", args=[field])


def cli_json(**inner: Any) -> str:
    data = {
        "accessToken": ACCESS,
        "refreshToken": REFRESH_TOKEN,
        "expiresAt": int((timezone.now() + timedelta(hours=5)).timestamp() * 1000),
        "scopes": ["user:inference", "user:profile"],
        **inner,
    }
    return json.dumps({"claudeAiOauth": data})


def save(client: Client, **fields: str) -> Any:
    return client.post(PAGE, {"oauth_tokens": "", "api_key": "", "agent_env": "", **fields})


def nothing_saved(user) -> bool:
    preferences = preferences_get(user=user)
    return not OAuthCredential.objects.filter(owner=user).exists() and not preferences.agent_env


# --- rows 1, 2, 6: a clear field error on the live check and on save, nothing saved ----------

HOSTILE_TOKENS = [
    ('{"access_token": "' + ACCESS + '", "expires_at": ' + HUGE + "}", "5,000 digits"),
    (cli_json().replace('"scopes"', '"n": ' + HUGE + ', "scopes"'), "5,000 digits"),
    (cli_json(expiresAt=HUGE), "5,000 digits"),
    (cli_json(expiresAt="9999-12-31T23:59:59-01:00"), "after 2100-01-01"),
    (cli_json(expiresAt="0001-01-01T00:00:00+01:00"), "before 2020-01-01"),
    (
        '{"access_token": "' + ACCESS + '", "access_token": "' + ACCESS + '"}',
        "appears twice",
    ),
    (cli_json().replace('"scopes"', '"accessToken": "x", "scopes"'), "appears twice"),
]


@pytest.mark.parametrize(("raw", "phrase"), HOSTILE_TOKENS)
def test_hostile_tokens_get_a_field_error_live_and_on_save(user_client, user, raw, phrase):
    response = user_client.post(validate_url("oauth_tokens"), {"oauth_tokens": raw}, **HTMX)
    assert response.status_code == 200
    assert phrase in response.content.decode()
    response = save(user_client, oauth_tokens=raw)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was saved." in html
    assert phrase in html
    assert nothing_saved(user)


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        ('{"PORT": ' + HUGE + "}", "5,000 digits"),
        ('{"A": "\\ud800"}', "unpaired surrogate (at character 1)"),
        ('{"A": "ok\\udc00"}', "unpaired surrogate (at character 3)"),
        ('{"A": "1", "A": "2"}', "appears twice"),
    ],
)
def test_hostile_environment_gets_a_field_error_live_and_on_save(user_client, user, raw, phrase):
    response = user_client.post(validate_url("agent_env"), {"agent_env": raw}, **HTMX)
    assert phrase in response.content.decode()
    response = save(user_client, agent_env=raw)
    assert response.status_code == 200
    assert phrase in response.content.decode()
    assert nothing_saved(user)


def test_a_surrogate_pair_written_as_two_escapes_is_one_character_and_fine():
    assert agent_env_parse(raw='{"A": "\\ud83d\\ude00"}') == {"A": "\U0001f600"}


# --- row 3: the rules, one list, refusing on save and reporting saved values ------------------


def test_every_rule_refuses_on_save_and_reports_a_saved_value():
    bad = {
        "1BAD": "x",
        "ANTHROPIC_API_KEY": "sk-ant-api03-zzzzzzzz",
        "NUL": "a\x00b",
        "SURROGATE": "a\ud800",
        "BIG": "x" * (4 * 1024 + 1),
    }
    assert len(AGENT_ENV_RULES) >= 5
    for name, value in bad.items():
        with pytest.raises(SettingsInputError):
            agent_env_parse(raw=json.dumps({name: value}))
    saved = {"GOOD": "fine-value-123", **bad, "NUMBER": 5}
    problems = agent_env_saved_problems(env=saved)
    assert [p.label for p in problems] == [*bad, "NUMBER"]
    assert all(p.message for p in problems)
    assert agent_env_usable(env=saved) == {"GOOD": "fine-value-123"}
    # Labels never quote a name that looks like a secret.
    leaked = agent_env_saved_problems(env={"sk-ant-api03-pasted-as-a-name": "v"})
    assert leaked[0].label == "variable #1"


def test_saved_bad_values_are_reported_on_the_page_and_left_out_of_tasks(user_client, user):
    preferences = preferences_get(user=user)
    preferences.agent_env = {"GITHUB_TOKEN": ENV_SECRET, "BROKEN": "x\ud800y"}
    preferences.save()
    preferences.refresh_from_db()
    assert preferences.agent_env["BROKEN"] == "x\ud800y"  # stored as it was before the rule
    html = user_client.get(PAGE).content.decode()
    assert "Saved variables that tasks leave out" in html
    assert "<code>BROKEN</code>:</strong> The value contains an unpaired surrogate" in html
    assert ENV_SECRET not in html
    env, left_out = agent_env_for_task(user=user)
    assert env == {"GITHUB_TOKEN": ENV_SECRET}
    assert [p.label for p in left_out] == ["BROKEN"]


# --- row 4: values too short to be protected are named on the page ---------------------------


def test_the_page_names_saved_values_too_short_to_be_hidden_in_logs(user_client, user):
    save(user_client, agent_env=json.dumps({"A": "test", "B": "1", "TOKEN": ENV_SECRET}))
    html = user_client.get(PAGE).content.decode()
    assert "Not hidden in task logs" in html
    assert "<code>A</code>, <code>B</code>" in html
    assert f"shorter than {REDACT_MIN_CHARS} characters" in html
    assert agent_env_unprotected(env={"A": "test", "C": "x" * REDACT_MIN_CHARS}) == ["A"]


# --- row 5: secret fields never rendered back; never cached -----------------------------------


def test_valid_tokens_and_a_bad_environment_render_no_secret_back(user_client, user):
    raw_env = json.dumps({"GITHUB_TOKEN": ENV_SECRET, "PORT": 8080})
    response = save(user_client, oauth_tokens=cli_json(), agent_env=raw_env)
    html = response.content.decode()
    assert "Nothing was saved." in html
    for secret in (ACCESS, REFRESH_TOKEN, ENV_SECRET):
        assert secret not in html
    # Both text boxes come back empty.
    assert len(re.findall(r"<textarea[^>]*>\s*</textarea>", html)) == 2
    assert "paste the OAuth tokens, environment variables again" in html
    assert "For safety the box was emptied: paste it again." in html  # beside the valid tokens
    assert nothing_saved(user)


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", PAGE, {}),
        ("post", PAGE, {"oauth_tokens": "bad"}),
        ("post", reverse("accounts:code_agent_settings_validate", args=["oauth_tokens"]), {}),
        ("post", REFRESH, {}),
        ("post", reverse("accounts:code_agent_tokens_remove"), {}),
        ("post", reverse("accounts:code_agent_api_key_remove"), {}),
        ("post", reverse("accounts:code_agent_env_remove"), {}),
    ],
)
def test_pages_that_show_credential_state_are_never_cached(user_client, method, url, data):
    response = getattr(user_client, method)(url, data, **HTMX)
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]


# --- row 8: "Refresh now" has a cooldown -------------------------------------------------------


def test_two_quick_refresh_clicks_refresh_once(
    user_client, user, make_credential, oauth_settings, token_server
):
    oauth_settings.CLAUDE_OAUTH_REFRESH_NOW_COOLDOWN = 30
    make_credential(user, expires_in=3600)
    first = user_client.post(REFRESH, **HTMX).content.decode()
    second = user_client.post(REFRESH, **HTMX).content.decode()
    assert "Refreshed." in first
    assert "works again in 30 seconds" in second or "works again in 29 seconds" in second
    assert token_server.refresh_count == 1
    # Once the cooldown has passed, it works again.
    OAuthCredential.objects.filter(owner=user).update(
        last_refresh_attempt_at=timezone.now() - timedelta(seconds=31)
    )
    assert "Refreshed." in user_client.post(REFRESH, **HTMX).content.decode()
    assert token_server.refresh_count == 2


# --- row 9: the method card does not say Ready when the next task will fail -------------------


def method_card(client: Client) -> str:
    html = client.get(PAGE).content.decode()
    return html[html.index('id="auth-method"') : html.index("How the method is chosen")]


@pytest.mark.parametrize(
    ("status", "badge", "phrase"),
    [
        (CredentialStatus.REFRESH_FAILED, ">Will fail<", "the next task will fail unless the"),
        (CredentialStatus.INVALID, ">Will fail<", "token server down"),
    ],
)
def test_expired_unrefreshable_tokens_without_a_key_do_not_say_ready(
    user_client, user, make_credential, settings, status, badge, phrase
):
    settings.ANTHROPIC_API_KEY = ""
    save(user_client, use_oauth="on")
    make_credential(user, expires_in=-600, status=status, last_refresh_error="token server down")
    card = method_card(user_client)
    assert ">Ready<" not in card
    assert badge in card
    assert phrase in card


def test_expired_failed_tokens_with_an_api_key_say_they_fall_back_to_it(
    user_client, user, make_credential, settings
):
    settings.ANTHROPIC_API_KEY = "sk-ant-api03-server-key-0123456789abcdefghijklmnop"
    save(user_client, use_oauth="on")
    make_credential(user, expires_in=-600, status=CredentialStatus.REFRESH_FAILED)
    card = method_card(user_client)
    assert ">Will fail<" not in card
    assert ">Ready<" not in card
    assert ">Falls back to the server&#x27;s API key<" in card


def test_a_github_token_pasted_as_a_variable_name_is_not_shown_back(user_client, user):
    """Keys and values swapped by mistake ({"ghp_...": "GITHUB_TOKEN"}): the token has the
    shape of a valid variable name, yet it is refused, never saved, and never printed on the
    settings page or in the live check."""
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # classic PAT shape, 40 chars
    swapped = json.dumps({token: "GITHUB_TOKEN"})
    live = user_client.post(
        "/accounts/settings/code-agent/validate/agent_env/", {"agent_env": swapped}
    ).content.decode()
    posted = save(user_client, agent_env=swapped).content.decode()
    page = user_client.get("/accounts/settings/code-agent/").content.decode()
    assert token not in live
    assert token not in posted
    assert token not in page
    assert "looks like a GitHub token" in live
    assert nothing_saved(user)
