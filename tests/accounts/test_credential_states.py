"""Every state a saved OAuth credential can be in, through both the settings page's method card
and the choice a task makes before it starts: one rule (oauth_tokens' oauth_usability) decides
both, so the card never says Ready for tokens a task will not use, nor "Will fail" for a task
that runs."""

import html
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.selectors import auth_method_for_user, preferences_get
from oauth_tokens.models import CredentialStatus
from oauth_tokens.services import AuthMethod, AuthUnavailable
from tests.accounts.test_settings_hostile import method_card

KEY = "sk-ant-api03-credential-states-user-key-0123456789"


@dataclass(frozen=True)
class State:
    name: str
    credential: dict[str, Any]  # make_credential's arguments
    refresh_works: bool  # whether the token endpoint would renew it
    usable: bool  # whether a task runs on these tokens (after any refresh)
    sign_in_again: bool = False  # a failure says "Sign in again"


def refused() -> dict[str, Any]:
    return {"refused_at": timezone.now() - timedelta(minutes=1)}


STATES = [
    State("fresh", {"expires_in": 3600}, True, True),
    State("expiring, renewed first", {"expires_in": 60}, True, True),
    State("expired, renewed first", {"expires_in": -600}, True, True),
    State(
        "expired, the last refresh failed and fails again",
        {"expires_in": -600, "status": CredentialStatus.REFRESH_FAILED},
        False,
        False,
    ),
    State(
        "unexpired, refresh token refused: used until it expires",
        {"expires_in": 3600, "status": CredentialStatus.INVALID},
        False,
        True,
    ),
    State(
        "expired, refresh token refused",
        {"expires_in": -600, "status": CredentialStatus.INVALID},
        False,
        False,
    ),
    State("setup token, unexpired", {"expires_in": 3600, "refresh": False}, False, True),
    State("setup token, expired", {"expires_in": -600, "refresh": False}, False, False),
    State("refused by the API, renewed first", {"expires_in": 3600, "refused": True}, True, True),
    State(
        "refused by the API, and the renewal fails",
        {"expires_in": 3600, "refused": True, "status": CredentialStatus.REFRESH_FAILED},
        False,
        False,
    ),
    State(
        "refused by the API after a forced refresh",
        {"expires_in": 3600, "refused": True, "status": CredentialStatus.INVALID},
        False,
        False,
        sign_in_again=True,
    ),
    State(
        "setup token refused by the API",
        {"expires_in": 3600, "refused": True, "refresh": False, "status": CredentialStatus.INVALID},
        False,
        False,
        sign_in_again=True,
    ),
]


def the_tasks_choice(user) -> str:
    """What a task's start makes of it: "oauth", "fallback", or the failure's words."""
    try:
        auth = auth_method_for_user(user=user)
    except AuthUnavailable as exc:
        return f"fails: {exc}"
    if auth.method == AuthMethod.OAUTH:
        return "oauth"
    assert auth.fallback
    return "fallback"


@pytest.mark.django_db
@pytest.mark.parametrize("with_key", [False, True], ids=["no API key", "an API key"])
@pytest.mark.parametrize("state", STATES, ids=[s.name for s in STATES])
def test_the_card_says_what_the_next_task_does(
    client: Client, user, make_credential, oauth_settings, token_server, settings, state, with_key
):
    settings.ANTHROPIC_API_KEY = ""
    preferences = preferences_get(user=user)
    preferences.use_oauth = True
    if with_key:
        preferences.api_key, preferences.api_key_last4 = KEY, KEY[-4:]
    preferences.save()
    arguments = dict(state.credential)
    if arguments.pop("refused", False):
        arguments.update(refused())
    credential = make_credential(user, **arguments)
    if not state.refresh_works and credential.refresh_token:
        token_server.revoke(credential.refresh_token)
    client.force_login(user)

    card = html.unescape(method_card(client))  # first: the task's choice may renew tokens
    choice = the_tasks_choice(user)

    if state.usable:
        assert choice == "oauth"
        assert ">Ready<" in card
        assert "Your Claude OAuth tokens" in card
    elif with_key:
        assert choice == "fallback"
        assert ">Falls back to your API key<" in card
        assert ">Ready<" not in card
    else:
        assert choice.startswith("fails: ")
        assert ">Will fail<" in card
        assert ">Ready<" not in card
        if state.sign_in_again:
            assert "Sign in again" in choice
            assert "Sign in again" in card
