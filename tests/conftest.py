from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from oauth_tokens.models import CredentialKind, CredentialSource, OAuthCredential


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="alice", password="pw-alice-123")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user(username="bob", password="pw-bob-123")


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def oauth_settings(settings, token_server):
    """Point refreshes at the loopback token server, with short limits."""
    settings.CLAUDE_OAUTH_TOKEN_URL = token_server.url
    settings.CLAUDE_OAUTH_TIMEOUT = 2.0
    settings.CLAUDE_OAUTH_MAX_TOTAL_SECONDS = 6.0
    settings.CLAUDE_OAUTH_MAX_ATTEMPTS = 3
    settings.CLAUDE_OAUTH_REFRESH_BUFFER = 300
    return settings


@pytest.fixture
def make_credential(token_server):
    def make(owner=None, *, expires_in: float | None = 3600, refresh: bool = True, **extra):
        values = {
            "kind": CredentialKind.REFRESHABLE if refresh else CredentialKind.SETUP_TOKEN,
            "source": CredentialSource.USER if owner else CredentialSource.ENVIRONMENT,
            "access_token": "sk-ant-oat01-original-access-token-value",
            "refresh_token": token_server.issue() if refresh else "",
            "expires_at": None
            if expires_in is None
            else timezone.now() + timedelta(seconds=expires_in),
            "scopes": ["user:inference", "user:profile"],
            "subscription_type": "max",
        }
        values.update(extra)
        return OAuthCredential.objects.create(owner=owner, **values)

    return make
