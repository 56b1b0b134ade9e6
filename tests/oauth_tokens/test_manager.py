"""ClaudeOAuthManager, the facade kept from the project's first design, on top of the services."""

import json
import time

import pytest

from oauth_tokens.manager import ClaudeOAuthManager
from oauth_tokens.models import OAuthCredential

pytestmark = pytest.mark.django_db


def test_usage_example_from_the_design(oauth_settings, token_server):
    oauth_settings.CLAUDE_USE_OAUTH = True
    oauth_settings.CLAUDE_ACCESS_TOKEN = "sk-ant-oat01-from-env-access-token"
    oauth_settings.CLAUDE_REFRESH_TOKEN = token_server.issue()
    oauth_settings.CLAUDE_EXPIRES_AT = str(int(time.time()) - 60)  # seconds, expired

    manager = ClaudeOAuthManager()
    assert manager.load_tokens_from_env()
    assert manager.is_token_expired()
    success, refreshed = manager.ensure_valid_token()
    assert success
    assert refreshed["access_token"] == token_server.last_grant["access_token"]
    assert refreshed["refresh_token"] == token_server.last_grant["refresh_token"]
    assert refreshed["token_type"] == "Bearer"
    assert not manager.is_token_expired()
    # Saved in the database: the global row is the truth now.
    assert OAuthCredential.objects.get(owner__isnull=True).access_token == refreshed["access_token"]

    # Nothing to do the second time.
    assert manager.ensure_valid_token() == (True, None)


def test_env_not_enabled(settings):
    settings.CLAUDE_USE_OAUTH = False
    manager = ClaudeOAuthManager()
    assert manager.load_tokens_from_env() is False


def test_dict_with_owner_is_stored_for_that_user(oauth_settings, user):
    manager = ClaudeOAuthManager(owner=user)
    assert manager.load_tokens_from_dict(
        {
            "access_token": "sk-ant-oat01-dict-access",
            "refresh_token": "sk-ant-ort01-dict-refresh",
            "expires_at": 4102444000,
        }
    )
    assert OAuthCredential.objects.get(owner=user).refresh_token == "sk-ant-ort01-dict-refresh"


def test_dict_without_owner_stays_in_memory_and_returns_refreshed_tokens(
    oauth_settings, token_server
):
    manager = ClaudeOAuthManager()
    refresh = token_server.issue()
    assert manager.load_tokens_from_dict(
        {"access_token": "sk-ant-oat01-mem", "refresh_token": refresh, "expires_at": 1700000000}
    )
    assert manager.refresh_access_token()
    assert OAuthCredential.objects.count() == 0
    cli = json.loads(manager.get_credentials_json())["claudeAiOauth"]
    assert cli["accessToken"] == token_server.last_grant["access_token"]
    assert "refreshToken" not in cli  # never handed to a container by default
    assert cli["expiresAt"] > time.time() * 1000  # milliseconds


def test_invalid_dict_is_rejected_with_the_reason():
    manager = ClaudeOAuthManager()
    assert manager.load_tokens_from_dict({"access_token": "x y"}) is False
    assert "access_token" in manager.last_error


def test_credentials_json_is_the_cli_format(oauth_settings, user):
    manager = ClaudeOAuthManager(owner=user)
    manager.load_tokens_from_dict(
        '{"claudeAiOauth": {"accessToken": "sk-ant-oat01-cli", "refreshToken": "sk-ant-ort01-r",'
        ' "expiresAt": 4102444000000, "scopes": ["user:inference"], "subscriptionType": "max"}}'
    )
    data = json.loads(manager.get_credentials_json(include_refresh_token=True))
    assert set(data) == {"claudeAiOauth"}
    assert data["claudeAiOauth"]["refreshToken"] == "sk-ant-ort01-r"
    assert data["claudeAiOauth"]["expiresAt"] == 4102444000000
    assert data["claudeAiOauth"]["subscriptionType"] == "max"
