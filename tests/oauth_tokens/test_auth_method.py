"""Choosing how a task authenticates: the priority table, fallback, and the design's messages."""

import itertools
import logging

import pytest

from accounts.selectors import auth_method_for_user, preferences_get
from oauth_tokens.models import CredentialSource, OAuthCredential
from oauth_tokens.services import AuthUnavailable

pytestmark = pytest.mark.django_db

ENV_KEY = "sk-ant-api03-server-wide-key-0000"
USER_KEY = "sk-ant-api03-users-own-key-1111"


@pytest.fixture
def env_oauth(oauth_settings, token_server):
    """Turn on global OAuth from the environment, with a valid refreshable token pair."""

    def enable():
        oauth_settings.CLAUDE_USE_OAUTH = True
        oauth_settings.CLAUDE_ACCESS_TOKEN = "sk-ant-oat01-global-access-from-env"
        oauth_settings.CLAUDE_REFRESH_TOKEN = token_server.issue()
        oauth_settings.CLAUDE_EXPIRES_AT = "2099-01-01T00:00:00Z"

    return enable


def set_prefs(user, *, use_oauth: bool, api_key: str = "") -> None:
    prefs = preferences_get(user=user)
    prefs.use_oauth, prefs.api_key = use_oauth, api_key
    prefs.api_key_last4 = api_key[-4:]
    prefs.save()


# (toggle on, user tokens saved, CLAUDE_USE_OAUTH, user API key, server API key) -> expected
def expected(toggle, tokens, global_on, user_key, env_key):
    if toggle and tokens:
        return ("oauth", "user")
    if global_on:
        return ("oauth", "environment")
    if user_key:
        return ("api_key", "user")
    if env_key:
        return ("api_key", "environment")
    return ("error", "Missing OAuth tokens" if toggle else "No way to authenticate")


@pytest.mark.parametrize("combo", list(itertools.product([False, True], repeat=5)))
def test_priority_table(combo, oauth_settings, env_oauth, make_credential, user):
    toggle, tokens, global_on, user_key, env_key = combo
    set_prefs(user, use_oauth=toggle, api_key=USER_KEY if user_key else "")
    if tokens:
        make_credential(user, expires_in=3600)
    if global_on:
        env_oauth()
    oauth_settings.ANTHROPIC_API_KEY = ENV_KEY if env_key else ""

    want = expected(*combo)
    if want[0] == "error":
        with pytest.raises(AuthUnavailable, match=want[1]):
            auth_method_for_user(user=user)
        return
    result = auth_method_for_user(user=user)
    assert (result.method, result.source) == want
    # OAuth asked for but no tokens anywhere: the API key runs it, and the result says why.
    assert result.fallback is (toggle and not tokens and not global_on)
    if result.fallback:
        assert result.oauth_error.startswith("Missing OAuth tokens")
    if result.method == "api_key":
        assert result.api_key == (USER_KEY if user_key else ENV_KEY)
        assert result.oauth is None
    else:
        assert result.api_key == ""  # never both: an API key silently beats OAuth in the CLI
        assert result.oauth is not None
        assert result.oauth.access_token.startswith("sk-ant-oat01-")


def test_user_oauth_refresh_failure_falls_back_to_api_key(
    oauth_settings, token_server, make_credential, user, caplog
):
    caplog.set_level(logging.INFO)
    set_prefs(user, use_oauth=True, api_key=USER_KEY)
    credential = make_credential(user, expires_in=-30)
    token_server.revoke(credential.refresh_token)

    result = auth_method_for_user(user=user)
    assert result.method == "api_key"
    assert result.fallback
    assert result.api_key == USER_KEY
    assert result.oauth_error.startswith("Invalid OAuth tokens in user preferences:")
    assert "invalid_grant" in result.oauth_error
    assert "falling back to the API key" in caplog.text
    assert USER_KEY not in caplog.text


def test_transient_failure_without_api_key_says_refresh_failed(
    oauth_settings, token_server, make_credential, user
):
    set_prefs(user, use_oauth=True)
    make_credential(user, expires_in=-30)
    token_server.fail_next(503, times=10)
    with pytest.raises(AuthUnavailable, match=r"^OAuth token refresh failed: .*503"):
        auth_method_for_user(user=user)


def test_invalid_tokens_without_api_key_fails_with_the_design_message(
    oauth_settings, token_server, make_credential, user
):
    set_prefs(user, use_oauth=True)
    credential = make_credential(user, expires_in=-30)
    token_server.revoke(credential.refresh_token)
    with pytest.raises(AuthUnavailable, match=r"^Invalid OAuth tokens in user preferences: "):
        auth_method_for_user(user=user)


def test_expired_token_is_refreshed_before_the_task(
    oauth_settings, token_server, make_credential, user
):
    set_prefs(user, use_oauth=True)
    make_credential(user, expires_in=-30)
    result = auth_method_for_user(user=user)
    assert result.method == "oauth"
    assert result.refreshed
    assert result.oauth is not None
    assert result.oauth.access_token == token_server.last_grant["access_token"]


def test_preview_never_refreshes_or_writes(oauth_settings, token_server, make_credential, user):
    set_prefs(user, use_oauth=True)
    credential = make_credential(user, expires_in=-30)
    before = OAuthCredential.objects.get(pk=credential.pk).updated_at
    result = auth_method_for_user(user=user, refresh=False)
    assert result.method == "oauth"
    assert result.refresh_due
    assert "refreshed before the task" in result.reason
    assert token_server.request_count == 0
    assert OAuthCredential.objects.get(pk=credential.pk).updated_at == before


def test_global_oauth_with_empty_access_token_says_missing(oauth_settings, user):
    oauth_settings.CLAUDE_USE_OAUTH = True
    oauth_settings.CLAUDE_ACCESS_TOKEN = ""
    with pytest.raises(AuthUnavailable, match=r"^Missing OAuth tokens: .*CLAUDE_ACCESS_TOKEN"):
        auth_method_for_user(user=user)


def test_global_oauth_with_bad_expiry_names_the_variable(oauth_settings, user):
    oauth_settings.CLAUDE_USE_OAUTH = True
    oauth_settings.CLAUDE_ACCESS_TOKEN = "sk-ant-oat01-global-access-from-env"
    oauth_settings.CLAUDE_REFRESH_TOKEN = "sk-ant-ort01-global-refresh-from-env"
    oauth_settings.CLAUDE_EXPIRES_AT = "tomorrow"
    with pytest.raises(AuthUnavailable, match="CLAUDE_EXPIRES_AT"):
        auth_method_for_user(user=user)


class TestEnvironmentSeeding:
    def test_seeded_once_and_the_database_is_the_truth(
        self, oauth_settings, env_oauth, token_server, user, other_user
    ):
        env_oauth()
        oauth_settings.CLAUDE_EXPIRES_AT = "2021-01-01T00:00:00Z"  # expired: forces a refresh
        first = auth_method_for_user(user=user)
        assert first.source == "environment"
        assert first.refreshed
        row = OAuthCredential.objects.get(owner__isnull=True)
        assert row.source == CredentialSource.ENVIRONMENT
        rotated = row.refresh_token
        assert rotated != oauth_settings.CLAUDE_REFRESH_TOKEN

        # A "restart" with the same environment keeps the rotated token, no re-seed.
        second = auth_method_for_user(user=other_user)
        assert not second.refreshed
        assert OAuthCredential.objects.get(pk=row.pk).refresh_token == rotated
        assert OAuthCredential.objects.filter(owner__isnull=True).count() == 1

    def test_a_different_environment_token_reseeds(
        self, oauth_settings, env_oauth, token_server, user, caplog
    ):
        env_oauth()
        auth_method_for_user(user=user)
        row = OAuthCredential.objects.get(owner__isnull=True)
        oauth_settings.CLAUDE_ACCESS_TOKEN = "sk-ant-oat01-a-brand-new-access-token"
        oauth_settings.CLAUDE_REFRESH_TOKEN = token_server.issue()
        caplog.set_level(logging.INFO)
        result = auth_method_for_user(user=user)
        assert result.oauth is not None
        assert result.oauth.access_token == "sk-ant-oat01-a-brand-new-access-token"
        reseeded = OAuthCredential.objects.get(owner__isnull=True)
        assert reseeded.pk == row.pk
        assert reseeded.refresh_token == oauth_settings.CLAUDE_REFRESH_TOKEN
        assert "re-seeded the global credential" in caplog.text
        assert oauth_settings.CLAUDE_REFRESH_TOKEN not in caplog.text


def test_run_now_with_my_api_key_never_says_oauth_is_off(oauth_settings, make_credential, user):
    set_prefs(user, use_oauth=True, api_key=USER_KEY)
    make_credential(user, expires_in=3600)
    auth = auth_method_for_user(user=user, api_key_only=True)
    assert (auth.method, auth.source) == ("api_key", "user")
    assert "OAuth is off" not in auth.reason
    assert "as you chose instead of waiting" in auth.reason
    assert "your other tasks keep Claude OAuth" in auth.reason
