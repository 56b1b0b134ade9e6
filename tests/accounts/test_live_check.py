"""The live check of pasted OAuth credentials tells the truth: its box's colour follows its
verdict, it says what it checked and what it could not, it never invents scopes, and the saved
tokens are "accepted by the API" only once a task's gateway has seen that."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.forms import CodeAgentSettingsForm
from oauth_tokens.models import OAuthCredential
from oauth_tokens.services import credential_accepted_record, credential_ensure_fresh

pytestmark = pytest.mark.django_db

PAGE = reverse("accounts:code_agent_settings")
VALIDATE = reverse("accounts:code_agent_settings_validate", args=["oauth_tokens"])
HTMX: dict[str, Any] = {"HTTP_HX_REQUEST": "true"}

ACCESS = "sk-ant-oat01-live-check-access-token-0123456789"
REFRESH = "sk-ant-ort01-live-check-refresh-token-0123456789"
SETUP_TOKEN = "sk-ant-oat01-live-check-setup-token-0123456789abcdef"
CHECKED = "Checked here: the format, the expiry and whether there is a refresh token."
NOT_CHECKED = "Not checked: whether Anthropic accepts it. The server has not used it yet"
# Words that say a task would not work: never in a green box.
FAILURE_SENTENCES = ("would fail", "expired", "cannot", "refused", "not valid")
SUCCESS_CLASS = "ok-box"


def ms(delta: timedelta) -> int:
    return int((timezone.now() + delta).timestamp() * 1000)


def cli_file(**inner: Any) -> str:
    data = {
        "accessToken": ACCESS,
        "refreshToken": REFRESH,
        "expiresAt": ms(timedelta(hours=5)),
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max",
        **inner,
    }
    return json.dumps({"claudeAiOauth": {k: v for k, v in data.items() if v is not None}})


def live(client, raw: str) -> str:
    response = client.post(VALIDATE, {"oauth_tokens": raw}, **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def box_class(html: str) -> str:
    match = re.search(r'<div class="([a-z]+-box) feedback-box"', html)
    assert match, html
    return match.group(1)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# Pasted texts with times in them are made when the test runs, not when it is collected: on a
# loaded machine minutes pass between the two, and "expires in 1 minute" would be a lie.
def expired_no_refresh() -> str:
    return json.dumps(
        {
            "access_token": ACCESS,
            "expires_at": int((timezone.now() - timedelta(days=2)).timestamp()),
        }
    )


def expired_refreshable() -> str:
    return cli_file(expiresAt=ms(-timedelta(hours=1)))


def snake_case_no_scopes() -> str:
    return json.dumps(
        {
            "access_token": ACCESS,
            "refresh_token": REFRESH,
            "expires_at": int((timezone.now() + timedelta(hours=5)).timestamp()),
        }
    )


@pytest.mark.parametrize(
    ("raw", "box", "says", "never_says"),
    [
        pytest.param(
            expired_no_refresh,
            "error-box",
            [
                "Tasks would fail with this token: it expired 2 days ago and has no refresh "
                "token to renew it.",
                "Create a new one with claude setup-token and paste it here.",
                CHECKED,
                NOT_CHECKED,
            ],
            ["Looks good", "Not saved yet", "Well-formed"],
            id="expired-no-refresh",
        ),
        pytest.param(
            expired_refreshable,
            "warn-box",
            [
                "The access token expired 1 hour ago; the server will try the refresh token "
                "before the next task.",
                "Whether the refresh token still works is known only then",
                CHECKED,
                NOT_CHECKED,
                "Not saved yet",
            ],
            ["Looks good", "would fail", "Well-formed"],
            id="expired-refreshable",
        ),
        pytest.param(
            SETUP_TOKEN,
            SUCCESS_CLASS,
            [
                "Well-formed; no expiry given and no refresh token: used as it is.",
                "a token on its own, as claude setup-token prints it",
                "Scopes no scopes given",
                CHECKED,
                NOT_CHECKED,
                "Not saved yet",
            ],
            ["Valid", "user:inference"],
            id="setup-token",
        ),
        pytest.param(
            snake_case_no_scopes,
            SUCCESS_CLASS,
            [
                "JSON with access_token (snake_case)",
                "Well-formed and refreshable: the server renews it before tasks.",
                "Scopes no scopes given",
                NOT_CHECKED,
            ],
            ["Valid", "user:inference", "user:profile", "user:sessions:claude_code"],
            id="snake-case-without-scopes",
        ),
        pytest.param(
            cli_file,
            SUCCESS_CLASS,
            [
                "the Claude CLI's credentials file (claudeAiOauth, camelCase)",
                "Well-formed and refreshable: the server renews it before tasks.",
                "Scopes user:inference, user:profile",
                "Subscription max",
                CHECKED,
                NOT_CHECKED,
            ],
            ["Valid", "user:sessions:claude_code"],
            id="camel-case-cli-file",
        ),
        pytest.param(
            lambda: cli_file(refreshToken=None, expiresAt=ms(timedelta(minutes=2))),
            "warn-box",
            ["This token expires in 1 minute and has no refresh token", NOT_CHECKED],
            ["Well-formed"],
            id="expiring-no-refresh",
        ),
        pytest.param(
            '{"claudeAiOauth": {"accessToken": tokens here}}',
            "error-box",
            ["The input is not valid JSON: Expecting value at line 1, column 35."],
            [CHECKED, "Not saved yet"],
            id="garbage",
        ),
    ],
)
def test_each_state_says_what_it_is_in_the_matching_box(user_client, raw, box, says, never_says):
    html = live(user_client, raw() if callable(raw) else raw)
    text = text_of(html).replace("&#x27;", "'")
    assert box_class(html) == box
    for words in says:
        assert words in text, words
    for words in never_says:
        assert words not in text, words
    assert "`" not in html  # commands are <code>, not literal backticks
    for secret in (ACCESS, REFRESH, SETUP_TOKEN):
        assert secret not in html


def test_a_failure_verdict_is_announced_and_a_good_one_is_not(user_client):
    assert 'role="alert"' in live(user_client, expired_no_refresh())
    assert 'role="alert"' not in live(user_client, cli_file())


def test_help_text_shows_the_clis_shape_first_and_accepts_both(user_client):
    html = text_of(user_client.get(PAGE).content.decode())
    cli = html.index('{"claudeAiOauth": {"accessToken": …, "refreshToken": …, "expiresAt": …}}')
    flat = html.index("JSON with access_token , refresh_token and expires_at is accepted too.")
    assert cli < flat
    assert "whether Anthropic accepts the token shows only once a task has used it" in html


# --- the verdict's colour never contradicts its words (any input) ------------------------------

_expiry_offsets = st.one_of(
    st.none(), st.integers(min_value=-400 * 24 * 3600, max_value=400 * 24 * 3600)
)


@st.composite
def pasted(draw: st.DrawFn) -> str:
    """Inputs in every shape, fresh or expired, with and without refresh token and scopes."""
    offset = draw(_expiry_offsets)
    expires_at = None if offset is None else datetime.now(UTC) + timedelta(seconds=offset)
    refresh = draw(st.sampled_from([REFRESH, None]))
    scopes = draw(st.sampled_from([None, ["user:inference"], ["user:inference", "user:profile"]]))
    shape = draw(st.sampled_from(["cli", "flat", "bare", "garbage"]))
    if shape == "bare":
        return SETUP_TOKEN
    if shape == "garbage":
        return draw(st.text(max_size=40))
    if shape == "cli":
        inner: dict[str, Any] = {"accessToken": ACCESS, "refreshToken": refresh}
        inner["expiresAt"] = None if expires_at is None else int(expires_at.timestamp() * 1000)
        if scopes is not None:
            inner["scopes"] = scopes
        return json.dumps({"claudeAiOauth": inner})
    flat: dict[str, Any] = {"access_token": ACCESS, "refresh_token": refresh}
    flat["expires_at"] = None if expires_at is None else expires_at.isoformat()
    if scopes is not None:
        flat["scopes"] = scopes
    return json.dumps(flat)


@settings(
    max_examples=settings().max_examples * 3 // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(raw=pasted())
def test_no_verdict_is_both_a_success_box_and_a_failure_sentence(raw):
    form = CodeAgentSettingsForm({"oauth_tokens": raw})
    form.is_valid()
    html = render_to_string(
        "accounts/_field_feedback.html", {"fb": form.feedback("oauth_tokens", saved=False)}
    )
    if 'class="ok-box' not in html:
        return
    text = text_of(html).lower()
    for sentence in FAILURE_SENTENCES:
        assert sentence not in text, (sentence, raw, text)
    assert "checked here" in text
    assert "not checked" in text


# --- the saved tokens: "Not used yet" until the API has accepted them -------------------------


def token_card(client) -> str:
    html = client.get(PAGE).content.decode()
    start = html.index('<div id="token-status"')
    return html[start : html.index("</dl>", start)]


def test_saved_tokens_are_not_called_valid_until_the_api_accepted_them(user_client, user):
    response = user_client.post(
        PAGE, {"oauth_tokens": cli_file(), "api_key": "", "agent_env": "", "use_oauth": "on"}
    )
    assert response.status_code == 302
    card = token_card(user_client)
    assert '<span class="badge badge-untried">Not used yet</span>' in card
    assert "not yet: no task has used these tokens, so whether Anthropic accepts them is not" in (
        text_of(card)
    )
    assert ">Valid<" not in card

    # A task's gateway saw the API accept them (the tokens were saved an hour before).
    credential = OAuthCredential.objects.get(owner=user)
    OAuthCredential.objects.filter(pk=credential.pk).update(
        saved_at=timezone.now() - timedelta(hours=1)
    )
    at = timezone.now() - timedelta(minutes=5)
    assert credential_accepted_record(credential_id=credential.pk, at=at)
    card = token_card(user_client)
    assert '<span class="badge badge-accepted">Accepted by the API</span>' in card
    expected = f"last accepted by the API at {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC (5"
    assert expected in text_of(card)

    # New tokens are not known to work: the page says so again.
    user_client.post(
        PAGE, {"oauth_tokens": SETUP_TOKEN, "api_key": "", "agent_env": "", "use_oauth": "on"}
    )
    card = token_card(user_client)
    assert "Not used yet" in card
    assert "last accepted" not in card


def test_tokens_saved_without_scopes_are_stored_and_shown_without_any(user_client, user):
    user_client.post(
        PAGE,
        {"oauth_tokens": snake_case_no_scopes(), "api_key": "", "agent_env": "", "use_oauth": "on"},
    )
    credential = OAuthCredential.objects.get(owner=user)
    assert credential.scopes == []
    assert "<dt>Scopes</dt><dd>no scopes given</dd>" in token_card(user_client)


def test_a_refresh_replaces_no_scopes_with_what_the_token_endpoint_granted(
    user, make_credential, oauth_settings, token_server
):
    credential = make_credential(user, expires_in=-60, scopes=[])
    assert credential_ensure_fresh(credential_id=credential.pk).refreshed
    credential.refresh_from_db()
    assert credential.scopes == oauth_settings.CLAUDE_OAUTH_SCOPE.split()


def test_the_container_file_for_tokens_saved_without_scopes_names_what_the_cli_needs(
    user_client, user
):
    # docs/claude-cli-contract.md#credentials-file: without user:inference the CLI refuses to run.
    from accounts.selectors import auth_method_for_user
    from tasks.models import CodingTask
    from tasks.run.containers import CREDENTIALS_PATH
    from tasks.run.inputs import container_inputs

    user_client.post(
        PAGE,
        {"oauth_tokens": snake_case_no_scopes(), "api_key": "", "agent_env": "", "use_oauth": "on"},
    )
    auth = auth_method_for_user(user=user)  # not due: no token request
    assert auth.method == "oauth"
    assert auth.oauth is not None
    assert auth.oauth.scopes == ()
    inputs = container_inputs(
        task=CodingTask(repo_url="https://github.com/a/b.git", branch="main", prompt="hi"),
        auth=auth,
        agent_env={},
        placeholder="claude-runner-placeholder-0123456789abcdef",
    )
    [file] = [f for f in inputs.files if f.path == CREDENTIALS_PATH]
    assert json.loads(file.data)["claudeAiOauth"]["scopes"] == ["user:inference"]
    # The server's own rendering of the saved tokens (never given to a container) agrees.
    assert json.loads(auth.oauth.credentials_file_json())["claudeAiOauth"]["scopes"] == [
        "user:inference"
    ]
