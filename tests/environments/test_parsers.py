"""The parsers of what a user or a repository gives an environment: devcontainer.json (the
repository's: untrusted), NAME=value lines, URL patterns."""

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InputError
from environments.devcontainer import devcontainer_parse
from environments.validation import repo_matches, variables_parse


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
