"""The parsers of what a user or a repository gives an environment: devcontainer.json (the
repository's: untrusted), NAME=value lines, URL patterns."""

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.env_rules import env_name_behaviour_refusal
from accounts.parsers import agent_env_parse
from common.errors import InputError
from common.logging import REDACT_MIN_CHARS
from environments.devcontainer import devcontainer_parse
from environments.models import Environment
from environments.selectors import environment_variables_for
from environments.services import environment_input_from_json
from environments.validation import repo_matches, variables_parse

SECRET = "setup-only-registry-token-parse-0001"


def test_devcontainer_lifecycle_commands_in_their_order():
    raw = json.dumps(
        {
            "image": "claude-runner-agent:universal-2.1.332",
            "postCreateCommand": "npm test",
            "onCreateCommand": ["pip", "install", "-e", ".[dev]"],
            "updateContentCommand": {"a": "make deps", "b": ["echo", "it's"]},
        }
    ).encode()
    parsed = devcontainer_parse(raw=raw)
    assert parsed.image == "claude-runner-agent:universal-2.1.332"
    fresh = [
        line
        for line in parsed.script(fresh=True).splitlines()
        if not line.startswith("echo '[setup]")
    ]
    assert fresh == ["pip install -e '.[dev]'", "make deps", "echo 'it'\"'\"'s'", "npm test"]
    again = parsed.script(fresh=False)
    assert "pip install" not in again
    assert "make deps" in again


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{ // comment\n}", "is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"image": 3}', "image is not text"),
        (b'{"postCreateCommand": 3}', "neither text"),
        (b'{"postCreateCommand": [1]}', "text only"),
        (b'{"postCreateCommand": {"a": {"b": "c"}}}', "nests objects"),
        (b"\xff\xfe", "is not JSON"),
        (b" " * (300 * 1024), "over"),
    ],
)
def test_a_bad_devcontainer_file_says_what_is_wrong(raw, words):
    with pytest.raises(InputError) as refused:
        devcontainer_parse(raw=raw)
    assert words in refused.value.message


@given(st.binary(max_size=2000))
def test_devcontainer_parse_never_fails_otherwise(raw):
    with contextlib.suppress(InputError):
        devcontainer_parse(raw=raw)


@given(st.text(max_size=500))
def test_variables_parse_gives_a_dict_or_a_field_error(text):
    try:
        found = variables_parse(text=text, field="variables")
    except InputError as exc:
        assert exc.field == "variables"
    else:
        assert all(isinstance(v, str) for v in found.values())


def test_variables_keep_values_exactly():
    assert variables_parse(text="A=1\n# note\n\nB= two = three ", field="v") == {
        "A": "1",
        "B": " two = three",
    }


@pytest.mark.parametrize(
    "text",
    [
        "NPM_TOKEN: c2VjcmV0LXRva2VuLXZhbHVl=",  # ': ' for '=', and base64 padding
        "export NPM_TOKEN=c2VjcmV0LXRva2VuLXZhbHVl",
        "c2VjcmV0LXRva2VuLXZhbHVl=",  # the token alone
        "NPM_TOKEN=c2VjcmV0LXRva2VuLXZhbHVl\nNPM_TOKEN=c2VjcmV0LXRva2VuLXZhbHVl",
        "NPM_TOKEN c2VjcmV0LXRva2VuLXZhbHVl",
    ],
)
def test_a_setup_secret_line_error_never_repeats_the_value(text):
    with pytest.raises(InputError) as refused:
        variables_parse(text=f"# registry\n{text}", field="setup_secrets")
    assert "c2VjcmV0" not in refused.value.message, refused.value.message
    assert refused.value.message.startswith(("Line 2", "Line 3")), refused.value.message


def test_a_short_setup_secret_is_refused_with_the_minimum():
    short = "x" * (REDACT_MIN_CHARS - 1)  # the logs would show it: too short to redact
    with pytest.raises(InputError) as refused:
        variables_parse(text=f"DB_PASSWORD={short}", field="setup_secrets")
    assert f"shorter than {REDACT_MIN_CHARS} characters" in refused.value.message
    long_enough = "x" * REDACT_MIN_CHARS
    assert variables_parse(text=f"DB_PASSWORD={long_enough}", field="setup_secrets") == {
        "DB_PASSWORD": long_enough
    }
    # Variables are not secret: any length.
    assert variables_parse(text="DEBUG=1", field="variables") == {"DEBUG": "1"}


@pytest.mark.parametrize(
    "name",
    [
        "NODE_OPTIONS",
        "GIT_CONFIG_COUNT",
        "GIT_SSH_COMMAND",
        "LD_AUDIT",
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
        "PYTHONPATH",
        "git_config_key_0",
        "https_proxy",
    ],
)
@pytest.mark.parametrize("field", ["variables", "setup_secrets"])
def test_environment_variables_follow_the_agents_extra_environment_rules(name, field):
    """Both phases get the variables, the agent's container too: the settings page's rules
    (accounts.env_rules) apply, in the same words."""
    assert env_name_behaviour_refusal(name=name) is not None
    with pytest.raises(InputError) as refused:
        variables_parse(text=f"{name}={SECRET}", field=field)
    with pytest.raises(InputError) as on_the_settings_page:
        agent_env_parse(raw=f'{{"{name}": "x"}}')
    assert refused.value.message == f"Line 1: {on_the_settings_page.value.message}"


def test_variables_saved_before_a_rule_are_left_out_of_the_containers():
    environment = Environment(
        variables={"NODE_OPTIONS": "--require /x", "DEBUG": "1", "PATH": "/x"}
    )
    assert environment_variables_for(environment=environment) == {"DEBUG": "1"}


_SECRETS = st.text(alphabet="0123456789abcdef+/", min_size=REDACT_MIN_CHARS, max_size=40)
_NAMES = st.sampled_from(["NPM_TOKEN", "1BAD", "export TOKEN", "PATH", "LD_PRELOAD", "A B", ""])
_SHAPES = st.sampled_from(
    [
        "{name}={secret}",
        "{name}: {secret}",
        "{name} {secret}",
        "{secret}",
        "{secret}=",
        "{name}={secret}\n{name}={secret}",
        "{name}={secret}\x00",
        '{name}="{secret}"',
    ]
)


@given(
    secret=_SECRETS,
    name=_NAMES,
    shape=_SHAPES,
    before=st.lists(st.sampled_from(["", "# note", "OK_NAME=fine-value-1"]), max_size=3),
    field=st.sampled_from(["variables", "setup_secrets"]),
)
def test_no_variables_error_ever_holds_a_value(secret, name, shape, before, field):
    """Whatever shape a pasted secret takes, a refusal names the line and never quotes it,
    nor any 8 characters of it."""
    text = "\n".join([*before, shape.format(name=name, secret=secret)])
    try:
        variables_parse(text=text, field=field)
    except InputError as exc:
        assert exc.field == field
        assert exc.message.startswith(("Line ", "At most"))
        pieces = {secret[i : i + REDACT_MIN_CHARS] for i in range(len(secret) - 7)}
        assert not any(piece in exc.message for piece in pieces), exc.message


@pytest.mark.parametrize(
    ("pattern", "url", "matches"),
    [
        ("https://github.com/acme/*", "https://github.com/acme/app.git", True),
        ("https://github.com/acme/*", "https://GitHub.com/acme/app/", True),
        ("https://github.com/acme/app", "https://github.com/acme/app.git", True),
        ("https://github.com/acme/*", "https://github.com/acme-evil/app.git", False),
        ("https://github.com/acme/ap?", "https://github.com/acme/app", True),
        ("https://github.com/acme/*", "https://evil.example/https://github.com/acme/x", False),
    ],
)
def test_patterns(pattern, url, matches):
    assert repo_matches(pattern=pattern, url=url) is matches


@given(st.text(max_size=300))
def test_patterns_parse_gives_patterns_or_a_field_error(text):
    from environments.validation import patterns_parse

    try:
        patterns = patterns_parse(text=text)
    except InputError as exc:
        assert exc.field == "repo_patterns"
    else:
        assert all(p.lower().startswith("https://") for p in patterns)
        assert all(p.isprintable() and len(p) <= 500 for p in patterns)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=8,
)


@given(variables=_JSON, allow=_JSON, patterns=_JSON)
def test_the_admins_json_becomes_the_pages_lines_or_a_field_error(variables, allow, patterns):
    fields = {"name": "x", "variables": variables, "agent_allow": allow, "setup_allow": [],
              "repo_patterns": patterns}  # fmt: skip
    try:
        data = environment_input_from_json(fields=fields)
    except InputError as exc:
        assert exc.field in ("variables", "agent_allow", "repo_patterns")
    else:
        # One NAME=value line per variable: the page's parser sees each of them alone.
        assert isinstance(variables, dict)
        assert len(data.variables.split("\n")) == max(len(variables), 1)
        assert isinstance(allow, list)
        assert data.agent_allow.split("\n") == (allow or [""])
