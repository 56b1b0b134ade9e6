"""Saving the settings page (accounts.services), called directly (the views call exactly this)."""

import pytest

from accounts.services import code_agent_settings_save
from oauth_tokens.formats import credential_input_parse

KEY = "sk-ant-api03-" + "k" * 80 + "-LAST"


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
