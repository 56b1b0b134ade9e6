"""The settings page's own rules, called directly (the views call exactly these)."""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.services import (
    SettingsInputError,
    agent_env_parse,
    api_key_parse,
    code_agent_settings_save,
    expiry_words,
)
from oauth_tokens.formats import credential_input_parse

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY = "sk-ant-api03-" + "k" * 80 + "-LAST"


def test_api_key_is_trimmed_and_empty_means_keep():
    assert api_key_parse(raw=f"  {KEY}\n") == KEY
    assert api_key_parse(raw="   ") == ""


def test_api_key_errors_never_quote_the_input():
    with pytest.raises(SettingsInputError) as error:
        api_key_parse(raw="sk-ant-oat01-" + "s" * 60)
    assert "s" * 10 not in str(error.value)


def test_agent_env_keeps_order_and_empty_means_keep():
    assert list(agent_env_parse(raw='{"B": "2", "A": "1"}') or {}) == ["B", "A"]
    assert agent_env_parse(raw="  ") is None
    assert agent_env_parse(raw="{}") == {}


def test_agent_env_error_names_the_variable():
    with pytest.raises(SettingsInputError) as error:
        agent_env_parse(raw='{"OK": "1", "ANTHROPIC_API_KEY": "x"}')
    assert error.value.field == "ANTHROPIC_API_KEY"
    assert "use the API key field" in error.value.message


def test_agent_env_does_not_echo_a_secret_used_as_a_name():
    with pytest.raises(SettingsInputError) as error:
        agent_env_parse(raw='{"sk-ant-api03-pasted-as-a-name": "x"}')
    assert error.value.field == "variable #1"


@pytest.mark.parametrize(
    ("expires_at", "words"),
    [
        (None, "never (no expiry given)"),
        (NOW + timedelta(hours=2, minutes=5), "in 2\xa0hours, 5\xa0minutes (2026-06-01 14:05 UTC)"),
        (NOW - timedelta(days=3), "expired 3\xa0days ago (2026-05-29 12:00 UTC)"),
    ],
)
def test_expiry_in_words(expires_at, words):
    assert expiry_words(expires_at=expires_at, now=NOW) == words


@pytest.mark.django_db
def test_save_reports_only_what_changed(user):
    parsed = credential_input_parse(raw="sk-ant-oat01-" + "t" * 60)
    changes = code_agent_settings_save(
        user=user, use_oauth=True, oauth_tokens=parsed, api_key=KEY, agent_env={"A": "1"}
    )
    assert changes == [
        "Claude OAuth turned on",
        "API key ending in …LAST saved",
        "1 environment variable saved",
        "OAuth tokens saved (long-lived token, no refresh token)",
    ]
    assert (
        code_agent_settings_save(
            user=user, use_oauth=True, oauth_tokens=None, api_key="", agent_env=None
        )
        == []
    )
