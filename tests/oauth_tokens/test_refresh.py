"""Refreshing a stored credential against a real token endpoint on loopback."""

import logging
from collections import Counter

import pytest
from django.db import connection

from oauth_tokens.models import CredentialStatus, OAuthCredential
from oauth_tokens.services import credential_ensure_fresh

pytestmark = pytest.mark.django_db


def test_valid_token_is_used_without_any_request(
    oauth_settings, token_server, make_credential, user
):
    credential = make_credential(user, expires_in=3600)
    result = credential_ensure_fresh(credential_id=credential.pk)
    assert result.ok
    assert not result.refreshed
    assert result.snapshot is not None
    assert result.snapshot.access_token == "sk-ant-oat01-original-access-token-value"
    assert token_server.request_count == 0
    credential.refresh_from_db()
    assert credential.last_used_at is not None


@pytest.mark.parametrize(("seconds_left", "requests"), [(299, 1), (301, 0)])
def test_buffer_edge(oauth_settings, token_server, make_credential, user, seconds_left, requests):
    credential = make_credential(user, expires_in=seconds_left)
    result = credential_ensure_fresh(credential_id=credential.pk)
    assert result.ok
    assert result.refreshed is bool(requests)
    assert token_server.request_count == requests


def test_expired_token_is_refreshed_and_rotation_is_kept(
    oauth_settings, token_server, make_credential, user
):
    credential = make_credential(user, expires_in=-60)
    old_refresh = credential.refresh_token
    result = credential_ensure_fresh(credential_id=credential.pk)

    grant = token_server.last_grant
    assert result.ok
    assert result.refreshed
    assert result.snapshot is not None
    assert result.snapshot.access_token == grant["access_token"]
    credential.refresh_from_db()
    assert credential.access_token == grant["access_token"]
    assert credential.refresh_token == grant["refresh_token"] != old_refresh
    assert not token_server.is_valid(old_refresh)  # single use: the old one is spent
    assert credential.status == CredentialStatus.VALID
    assert credential.refresh_count == 1
    assert credential.consecutive_failures == 0
    assert credential.last_refreshed_at is not None
    remaining = (credential.expires_at - credential.last_refreshed_at).total_seconds()
    assert remaining == pytest.approx(28800, abs=2)

    # The next call uses the rotated token: a second refresh succeeds at the server.
    second = credential_ensure_fresh(credential_id=credential.pk, force=True)
    assert second.ok
    assert second.refreshed
    assert token_server.refresh_count == 2


def test_old_refresh_token_is_kept_when_none_comes_back(
    oauth_settings, token_server, make_credential, user
):
    token_server.rotate = False
    credential = make_credential(user, expires_in=-1)
    old_refresh = credential.refresh_token
    assert credential_ensure_fresh(credential_id=credential.pk).refreshed
    credential.refresh_from_db()
    assert credential.refresh_token == old_refresh


def test_server_errors_are_retried_then_succeed(
    oauth_settings, token_server, make_credential, user
):
    token_server.fail_next(503, times=2)
    credential = make_credential(user, expires_in=-1)
    result = credential_ensure_fresh(credential_id=credential.pk)
    assert result.ok
    assert result.refreshed
    assert token_server.request_count == 3


def test_rate_limit_retry_after_is_honoured(oauth_settings, token_server, make_credential, user):
    token_server.fail_next(429, headers={"Retry-After": "1"})
    credential = make_credential(user, expires_in=-1)
    result = credential_ensure_fresh(credential_id=credential.pk)
    assert result.ok
    assert result.refreshed
    first, second = token_server.requests
    assert second.received_at - first.received_at >= 1.0


def test_invalid_grant_is_final_and_marks_the_credential_invalid(
    oauth_settings, token_server, make_credential, user
):
    credential = make_credential(user, expires_in=-1)
    token_server.revoke(credential.refresh_token)
    result = credential_ensure_fresh(credential_id=credential.pk)
    assert not result.ok
    assert result.permanent
    assert "invalid_grant" in result.error
    assert token_server.request_count == 1  # no retry
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.INVALID
    assert credential.consecutive_failures == 1
    assert "invalid_grant" in credential.last_refresh_error

    # A dead credential is not sent to the endpoint again.
    again = credential_ensure_fresh(credential_id=credential.pk)
    assert not again.ok
    assert token_server.request_count == 1


def test_endpoint_down_but_token_still_valid_uses_it_and_records_the_failure(
    oauth_settings, token_server, make_credential, user
):
    token_server.fail_next(503, times=10)
    credential = make_credential(user, expires_in=120)  # inside the buffer, not expired
    result = credential_ensure_fresh(credential_id=credential.pk)
    assert result.ok
    assert result.stale
    assert not result.refreshed
    assert result.snapshot is not None
    assert result.snapshot.access_token == "sk-ant-oat01-original-access-token-value"
    assert "503" in result.error
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.REFRESH_FAILED
    assert credential.consecutive_failures == 1
    assert credential.last_refresh_error


def test_endpoint_down_and_token_expired_fails(oauth_settings, token_server, make_credential, user):
    token_server.fail_next(503, times=10)
    credential = make_credential(user, expires_in=-5)
    result = credential_ensure_fresh(credential_id=credential.pk)
    assert not result.ok
    assert not result.permanent


def test_setup_token_never_refreshes(oauth_settings, token_server, make_credential, user):
    never = make_credential(user, expires_in=None, refresh=False)
    assert credential_ensure_fresh(credential_id=never.pk).ok
    OAuthCredential.objects.filter(pk=never.pk).update(
        expires_at=never.created_at.replace(year=2021)
    )
    expired = credential_ensure_fresh(credential_id=never.pk)
    assert not expired.ok
    assert "claude setup-token" in expired.error
    assert token_server.request_count == 0


def test_no_token_reaches_the_logs(oauth_settings, token_server, make_credential, user, caplog):
    caplog.set_level(logging.DEBUG)
    credential = make_credential(user, expires_in=-1)
    old_refresh = credential.refresh_token
    credential_ensure_fresh(credential_id=credential.pk)
    token_server.revoke(token_server.last_grant["refresh_token"])
    credential_ensure_fresh(credential_id=credential.pk, force=True)
    text = caplog.text
    assert "Refreshed OAuth credential" in text
    assert "invalid_grant" in text
    for secret in (old_refresh, token_server.last_grant["access_token"], "sk-ant-o"):
        assert secret not in text


@pytest.mark.django_db(transaction=True)
def test_a_refresh_the_endpoint_answers_late_never_resends_the_single_use_token(
    oauth_settings, token_server, make_credential, user
):
    """The endpoint takes longer than CLAUDE_OAUTH_TIMEOUT (2 s here) and still processes the
    refresh: the refresh token is sent once, and the credential says what happened without
    being declared dead (the next refresh tells)."""
    token_server.delay_seconds = 2.5  # answers after the client's read timeout
    credential = make_credential(user, expires_in=-10)
    try:
        first = credential_ensure_fresh(credential_id=credential.pk)
    finally:
        connection.close()
    sent = Counter(r.body["refresh_token"] for r in token_server.requests)
    assert max(sent.values()) == 1, f"one refresh token sent {max(sent.values())} times"
    assert not first.ok
    assert not first.permanent
    credential.refresh_from_db()
    assert (credential.status, credential.last_refresh_error_code) == (
        CredentialStatus.REFRESH_FAILED,
        "no_answer",
    )
    assert "did not answer within 2.0 s" in credential.last_refresh_error
    assert "if the endpoint refuses it, sign in again" in credential.last_refresh_error
