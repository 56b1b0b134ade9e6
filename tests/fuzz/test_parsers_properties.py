"""Property tests of every parser of user input: each input either parses or raises
the project's one InputError (common.errors) with a message; no other exception, ever. And a
refused input never changes anything stored.

Bounded by the Hypothesis profile in conftest.py. A failure found here becomes an @example.
"""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.parsers import agent_env_parse, api_key_parse
from common.errors import InputError
from oauth_tokens.formats import credential_input_parse, credentials_file_dumps, expiry_parse
from oauth_tokens.models import OAuthCredential
from tasks.validation import (
    branch_name_check,
    live_since_parse,
    prompt_check,
    repo_url_check,
)

from .strategies import (
    any_text,
    branch_names,
    env_documents,
    expiry_values,
    form_text,
    pasted_credentials,
    repo_urls,
    tokens,
)


def parses_or_input_error(parse: Callable[[], Any]) -> Any:
    """The property: a result, or InputError with a message. Anything else fails the test."""
    try:
        return parse()
    except InputError as error:
        assert error.message.strip(), "an InputError without a message"
        return None


HUGE = "9" * 5000


@given(raw=pasted_credentials)
# Inputs that once got past a parser, kept as explicit examples.
@example(
    raw='{"access_token": "sk-ant-oat01-aaaaaaaaaaaaaaaaaaaaaaaa", "expires_at": ' + HUGE + "}"
)
@example(
    raw='{"claudeAiOauth": {"accessToken": "sk-ant-oat01-aaaaaaaaaaaaaaaaaaaa", "expiresAt": "'
    + HUGE
    + '"}}'
)
@example(
    raw='{"claudeAiOauth": {"accessToken": "sk-ant-oat01-aaaaaaaaaaaaaaaaaaaa", '
    '"expiresAt": "9999-12-31T23:59:59-01:00"}}'
)
@example(
    raw='{"claudeAiOauth": {"accessToken": "sk-ant-oat01-aaaaaaaaaaaaaaaaaaaa", '
    '"expiresAt": "0001-01-01T00:00:00+01:00"}}'
)
@example(raw='{"access_token": "sk-ant-oat01-aaaaaaaaaaaaaaaaaaaa", "access_token": "x"}')
def test_pasted_credentials_parse_or_say_why(raw: str) -> None:
    parsed = parses_or_input_error(lambda: credential_input_parse(raw=raw))
    if parsed is not None:
        # What was accepted can always be written as the CLI's file and read back the same.
        text = credentials_file_dumps(
            access_token=parsed.access_token,
            refresh_token=parsed.refresh_token,
            expires_at=parsed.expires_at,
            scopes=parsed.scopes,
            subscription_type=parsed.subscription_type,
            rate_limit_tier=parsed.rate_limit_tier,
        )
        again = credential_input_parse(raw=text)
        assert (again.access_token, again.refresh_token, again.expires_at) == (
            parsed.access_token,
            parsed.refresh_token,
            parsed.expires_at,
        )


@given(
    raw=st.binary(max_size=300)
    | pasted_credentials.map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_pasted_credentials_as_bytes_parse_or_say_why(raw: bytes) -> None:
    parses_or_input_error(lambda: credential_input_parse(raw=raw))


@given(value=expiry_values)
@example(value=HUGE)
@example(value="-" + HUGE)
@example(value="9999-12-31T23:59:59-01:00")
@example(value="0001-01-01T00:00:00+01:00")
@example(value=10**5000)
@example(value=float("nan"))
def test_expiry_forms_parse_or_say_why(value: Any) -> None:
    parses_or_input_error(lambda: expiry_parse(value=value))


@given(raw=st.one_of(any_text, tokens, tokens.map(lambda t: f" {t} ")))
def test_api_key_parses_or_says_why(raw: str) -> None:
    key = parses_or_input_error(lambda: api_key_parse(raw=raw))
    if key:
        assert key == raw.strip()


@given(raw=env_documents)
@example(raw='{"A": ' + HUGE + "}")
@example(raw='{"A": "\\ud800"}')
@example(raw='{"A": "1", "A": "2"}')
def test_extra_environment_parses_or_says_why(raw: str) -> None:
    env = parses_or_input_error(lambda: agent_env_parse(raw=raw))
    if env:
        # Whatever is accepted can be written as UTF-8: a task never fails on it.
        for name, value in env.items():
            name.encode("utf-8")
            value.encode("utf-8")


@pytest.mark.parametrize("local_allowed", [False, True])
@given(url=repo_urls)
@example(url="file:///\x00")
@example(url="https://[::1")  # found by this test: urlsplit's ValueError was a 500
def test_repository_urls_parse_or_say_why(
    settings, tmp_path, local_allowed: bool, url: str
) -> None:
    settings.AGENT_ALLOW_LOCAL_REPOS = local_allowed
    settings.AGENT_LOCAL_REPOS_ROOT = str(tmp_path) if local_allowed else ""
    parses_or_input_error(lambda: repo_url_check(url=url))


@given(branch=branch_names)
def test_branch_names_parse_or_say_why(branch: str) -> None:
    parses_or_input_error(lambda: branch_name_check(branch=branch))


@given(prompt=any_text)
def test_prompts_parse_or_say_why(prompt: str) -> None:
    parses_or_input_error(lambda: prompt_check(prompt=prompt))


# --- through the save service: a refused input changes nothing stored -------------------------


def _stored(user) -> tuple[Any, ...]:
    credential = OAuthCredential.objects.get(owner=user)
    preferences = user.preferences
    preferences.refresh_from_db()
    return (
        credential.access_token,
        credential.refresh_token,
        credential.expires_at,
        credential.updated_at,
        preferences.api_key,
        preferences.agent_env,
        preferences.use_oauth,
    )


@pytest.mark.django_db
@hypothesis_settings(max_examples=60)
@given(
    tokens_input=pasted_credentials.map(
        lambda t: t.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    ),
    api_key=form_text,
    env_input=env_documents.map(
        lambda t: t.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    ),
)
@example(
    tokens_input='{"claudeAiOauth": {"accessToken": "sk-ant-oat01-new-valid-token-0123456789"}}',
    api_key="",
    env_input='{"PORT": 8080}',
)
def test_a_refused_save_changes_nothing_stored(
    user_client, user, make_credential, tokens_input: str, api_key: str, env_input: str
) -> None:
    if not OAuthCredential.objects.filter(owner=user).exists():
        make_credential(user)
        preferences = user.preferences if hasattr(user, "preferences") else None
        if preferences is None:
            from accounts.selectors import preferences_get

            preferences = preferences_get(user=user)
        preferences.agent_env = {"KEPT": "kept-value-123"}
        preferences.save()
    before = _stored(user)
    response = user_client.post(
        reverse("accounts:code_agent_settings"),
        {"oauth_tokens": tokens_input, "api_key": api_key, "agent_env": env_input},
    )
    assert response.status_code in (200, 302)
    if response.status_code == 200:  # refused: the page again, with the reasons
        assert "Nothing was saved." in response.content.decode()
        assert _stored(user) == before
    else:  # accepted: start the next example from what is now stored
        json.dumps(_stored(user)[5])


@given(st.one_of(any_text, st.integers(min_value=-(10**20), max_value=10**20).map(str)))
@example("١٢")
@example("+5")
@example(" 7")
@example("9" * 16)
def test_a_poll_count_is_a_plain_count_or_minus_one(text):
    count = live_since_parse(text=text)
    assert count >= -1
    if count >= 0:
        assert str(count) == text.lstrip("0") or (count == 0 and set(text) == {"0"})
    if text.isascii() and text.isdigit() and len(text) <= 15:
        assert count == int(text)
