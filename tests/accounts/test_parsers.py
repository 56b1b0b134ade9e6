"""The settings page's input rules (accounts.parsers), called directly (the views call exactly
these)."""

import pytest

from accounts.parsers import SettingsInputError, agent_env_parse, api_key_parse

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
