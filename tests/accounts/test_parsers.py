"""The settings page's input rules (accounts.parsers), called directly (the views call exactly
these)."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.live_check import agent_env_describe
from accounts.parsers import (
    SettingsInputError,
    agent_env_name_labels,
    agent_env_name_refusal,
    agent_env_parse,
    agent_env_saved_problems,
    agent_env_unprotected,
    agent_env_usable,
    api_key_parse,
)
from common.errors import InputError
from environments.validation import variable_name_allowed, variables_parse

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


# A token pasted as a name: the shapes common.logging redacts.
SECRET_SHAPED_NAMES = st.builds(
    str.__add__,
    st.sampled_from(
        ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "sk-ant-api03-", "sk-ant-oat01-"]
    ),
    st.from_regex(r"[A-Za-z0-9_]{16,60}", fullmatch=True),
)


@given(
    name=SECRET_SHAPED_NAMES,
    value=st.text(max_size=20),
    others=st.dictionaries(
        st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True), st.text(max_size=10), max_size=3
    ),
)
def test_no_error_or_page_text_ever_holds_a_secret_shaped_name(name, value, others):
    env = {**others, name: value}
    with pytest.raises(SettingsInputError) as error:
        agent_env_parse(raw=json.dumps(env))
    assert name not in str(error.value)
    shown = [
        *agent_env_name_labels(env=env),
        *agent_env_unprotected(env=env),
        *(f"{p.label} {p.message}" for p in agent_env_saved_problems(env=env)),
        *(f"{label} {text}" for label, text in agent_env_describe(env=env).facts),
    ]
    assert not any(name in line for line in shown)
    assert name not in agent_env_usable(env=env)
    # The environment page's variables follow the same rule.
    lines = "\n".join(f"{n}=x" for n in [*others, name])
    with pytest.raises(InputError) as env_error:
        variables_parse(text=lines, field="variables")
    assert name not in str(env_error.value)
    assert not variable_name_allowed(name=name)


def test_a_github_token_as_a_name_is_refused_with_what_to_do():
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    with pytest.raises(SettingsInputError) as error:
        agent_env_parse(raw=json.dumps({"OK": "1", token: "GITHUB_TOKEN"}))
    assert error.value.field == "variable #2"
    assert "looks like a GitHub token" in error.value.message
    assert "Put the token in the value" in error.value.message
    with pytest.raises(InputError) as env_error:
        variables_parse(text=f"OK=1\n{token}=GITHUB_TOKEN", field="variables")
    assert str(env_error.value).startswith("variables: Line 2: This name looks like a GitHub")
    assert token not in str(env_error.value)


# --- names that change how programs run or where traffic goes ---------------------------

REFUSED_NAMES = [
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_KEY_0",
    "GIT_CONFIG_VALUE_0",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_GLOBAL",
    "BASH_ENV",
    "ENV",
    "NODE_OPTIONS",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "no_proxy",
    "NODE_TLS_REJECT_UNAUTHORIZED",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_ANYTHING",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_ASKPASS",
    "AGENT_GATEWAY_PORT",
]


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_names_that_change_how_programs_run_or_where_traffic_goes_are_refused(name):
    assert agent_env_name_refusal(name=name)
    with pytest.raises(SettingsInputError, match="cannot be set here") as info:
        agent_env_parse(raw=json.dumps({"FINE": "1", name: "x"}))
    assert info.value.field == name


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "NPM_TOKEN", "NODE_ENV", "GIT_AUTHOR_NAME"])
def test_ordinary_names_pass(name):
    assert agent_env_name_refusal(name=name) is None
    assert agent_env_parse(raw=json.dumps({name: "x"})) == {name: "x"}


@given(
    prefix=st.sampled_from(["GIT_CONFIG", "LD_", "SSL_CERT_", "ANTHROPIC_", "CLAUDE_", "GIT_SSH"]),
    rest=st.from_regex(r"[A-Za-z0-9_]{0,20}", fullmatch=True),
    lower=st.booleans(),
)
def test_every_name_in_a_refused_family_is_refused(prefix, rest, lower):
    name = prefix + rest
    name = name.lower() if lower else name
    assert agent_env_name_refusal(name=name)


@given(stem=st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True))
def test_every_proxy_variable_is_refused(stem):
    assert agent_env_name_refusal(name=f"{stem}_PROXY")
    assert agent_env_name_refusal(name=f"{stem}_proxy")


def test_saved_variables_that_break_a_name_rule_are_left_out_and_reported():
    env = {"GITHUB_TOKEN": "t", "LD_PRELOAD": "/x.so", "https_proxy": "http://evil"}
    assert agent_env_usable(env=env) == {"GITHUB_TOKEN": "t"}
    problems = {p.label: p.message for p in agent_env_saved_problems(env=env)}
    assert set(problems) == {"LD_PRELOAD", "https_proxy"}
    assert "run other code" in problems["LD_PRELOAD"]
    assert "network traffic" in problems["https_proxy"]
