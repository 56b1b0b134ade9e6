"""The Django-side providers with the real single-flight refresh, a loopback token server, the
fake Anthropic API and a real TaskGateway: the API sees the new token, the container never."""

from __future__ import annotations

import json

import pytest

from gateway.credentials import api_key_provider, oauth_provider
from oauth_tokens.models import OAuthCredential
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.fakes.token_server import FakeTokenServer
from tests.gateway.conftest import UnixHTTPConnection

# The provider reaches the database from the gateway's worker threads.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

ORIGINAL = "sk-ant-oat01-original-access-token-value"  # tests/conftest.py make_credential


def _post(gateway, placeholder: str) -> int:
    conn = UnixHTTPConnection(gateway.socket_path)
    body = json.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    )
    conn.request(
        "POST",
        "/v1/messages?beta=true",
        body=body,
        headers={"authorization": f"Bearer {placeholder}", "anthropic-beta": "oauth-2025-04-20"},
    )
    response = conn.getresponse()
    response.read()
    return response.status


def test_a_401_refreshes_once_through_the_token_server_and_replays(
    oauth_settings,
    make_credential,
    token_server: FakeTokenServer,
    start_gateway,
    fake_api: FakeAnthropicAPI,
) -> None:
    credential = make_credential(expires_in=3600)  # valid by its clock, but the API says no
    fake_api.valid_credentials = None
    fake_api.rejected_credentials = {ORIGINAL}
    provider = oauth_provider(credential_id=credential.pk)
    gateway, placeholder, lines = start_gateway(provider=provider)

    assert _post(gateway, placeholder) == 200
    assert token_server.refresh_count == 1
    new_token = (token_server.last_grant or {})["access_token"]
    assert [r.bearer_token for r in fake_api.requests] == [ORIGINAL, new_token]
    assert [r.status for r in fake_api.requests] == [401, 200]
    credential.refresh_from_db()
    assert credential.access_token == new_token  # saved (the refresh token rotated)
    # The next request uses the new token straight away: no second refresh.
    assert _post(gateway, placeholder) == 200
    assert token_server.refresh_count == 1
    assert fake_api.requests[-1].bearer_token == new_token
    assert any("refreshed the OAuth token and replayed" in line for line in lines)
    assert not any(new_token in line or ORIGINAL in line for line in lines)


def test_a_token_near_expiry_is_refreshed_before_forwarding(
    oauth_settings,
    make_credential,
    token_server: FakeTokenServer,
    start_gateway,
    fake_api: FakeAnthropicAPI,
) -> None:
    credential = make_credential(expires_in=60)  # inside the 300 s buffer
    fake_api.valid_credentials = None
    fake_api.rejected_credentials = {ORIGINAL}
    gateway, placeholder, _ = start_gateway(provider=oauth_provider(credential_id=credential.pk))
    assert _post(gateway, placeholder) == 200
    assert token_server.refresh_count == 1
    assert [r.status for r in fake_api.requests] == [200]  # never sent the old token
    assert fake_api.requests[0].bearer_token == (token_server.last_grant or {})["access_token"]


def test_a_token_held_in_memory_is_refreshed_once_it_comes_near_expiry(
    oauth_settings,
    settings,
    make_credential,
    token_server: FakeTokenServer,
    start_gateway,
    fake_api: FakeAnthropicAPI,
) -> None:
    credential = make_credential(expires_in=3600)
    gateway, placeholder, _ = start_gateway(provider=oauth_provider(credential_id=credential.pk))
    fake_api.valid_credentials = None
    assert _post(gateway, placeholder) == 200
    assert _post(gateway, placeholder) == 200  # from memory: no refresh, no new token
    assert token_server.refresh_count == 0
    settings.CLAUDE_OAUTH_REFRESH_BUFFER = 7200  # the held token is now within the buffer
    assert _post(gateway, placeholder) == 200
    assert token_server.refresh_count == 1
    new_token = (token_server.last_grant or {})["access_token"]
    assert [r.bearer_token for r in fake_api.requests] == [ORIGINAL, ORIGINAL, new_token]


def test_a_401_with_a_dead_refresh_token_is_passed_on(
    oauth_settings,
    make_credential,
    token_server: FakeTokenServer,
    start_gateway,
    fake_api: FakeAnthropicAPI,
) -> None:
    credential = make_credential(expires_in=3600)
    token_server.revoke(credential.refresh_token)
    fake_api.valid_credentials = None
    fake_api.rejected_credentials = {ORIGINAL}
    gateway, placeholder, lines = start_gateway(
        provider=oauth_provider(credential_id=credential.pk)
    )
    assert _post(gateway, placeholder) == 401
    assert len(fake_api.requests) == 1
    assert "could not be refreshed" in lines[-1]


def test_a_setup_token_is_used_as_is_and_never_refreshed(
    oauth_settings, make_credential, token_server: FakeTokenServer, start_gateway, fake_api
) -> None:
    credential = make_credential(expires_in=None, refresh=False)
    fake_api.valid_credentials = {ORIGINAL}
    gateway, placeholder, _ = start_gateway(provider=oauth_provider(credential_id=credential.pk))
    assert _post(gateway, placeholder) == 200
    assert token_server.request_count == 0


def test_a_removed_credential_is_a_503_with_a_reason(
    oauth_settings, make_credential, start_gateway, fake_api
) -> None:
    credential = make_credential(expires_in=60)
    provider = oauth_provider(credential_id=credential.pk)
    OAuthCredential.objects.filter(pk=credential.pk).delete()
    gateway, placeholder, lines = start_gateway(provider=provider)
    assert _post(gateway, placeholder) == 503
    assert lines == ["model request failed: no usable credential (the OAuth tokens were removed)"]
    assert fake_api.requests == []


def test_api_key_provider() -> None:
    provider = api_key_provider(api_key="sk-ant-api03-x")
    assert provider.cached() == provider.current() == "sk-ant-api03-x"
    assert provider.refresh_after_401("sk-ant-api03-x") is None
    assert "sk-ant" not in repr(provider)
