"""The admin's "refresh selected now" action, through the single-flight service.

The action refreshes in worker threads, which read committed rows only: hence transaction=True.
"""

import threading

import pytest
from django.db import connection
from django.urls import reverse

from oauth_tokens.admin import credentials as credentials_admin
from oauth_tokens.models import CredentialStatus, OAuthCredential
from oauth_tokens.services import credential_ensure_fresh

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = reverse("admin:oauth_tokens_oauthcredential_changelist")


def _refresh(admin_client, *credentials: OAuthCredential) -> str:
    response = admin_client.post(
        CHANGELIST,
        {"action": "refresh_selected", "_selected_action": [c.pk for c in credentials]},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def test_refresh_selected_now(admin_client, oauth_settings, token_server, make_credential, user):
    not_due = make_credential(user, expires_in=3600)  # refreshed anyway: the operator asked
    old_refresh = not_due.refresh_token

    html = _refresh(admin_client, not_due)

    assert "Refreshed 1, skipped 0, failed 0." in html
    saved = OAuthCredential.objects.get(pk=not_due.pk)
    assert saved.refresh_token == token_server.grants[old_refresh]["refresh_token"]
    assert saved.refresh_count == 1
    assert token_server.request_count == 1
    assert "sk-ant-" not in html


def test_refresh_selected_reports_failures_and_skips(
    admin_client, oauth_settings, token_server, make_credential, user, other_user
):
    revoked = make_credential(user, expires_in=-60)
    token_server.revoke(revoked.refresh_token)
    setup_token = make_credential(other_user, expires_in=None, refresh=False)

    html = _refresh(admin_client, revoked, setup_token)

    assert "Refreshed 0, skipped 1, failed 1." in html
    assert f"Failed alice (credential {revoked.pk}): OAuth token endpoint said invalid_grant" in (
        html
    )
    assert f"Skipped bob (credential {setup_token.pk}): not refreshable" in html
    assert OAuthCredential.objects.get(pk=revoked.pk).status == CredentialStatus.INVALID
    assert token_server.request_count == 1


def test_refresh_selected_while_a_task_refreshes_sends_one_request(
    admin_client, oauth_settings, token_server, make_credential, user
):
    token_server.delay_seconds = 0.5
    credential = make_credential(user, expires_in=-60)
    results = []

    def task() -> None:
        try:
            results.append(credential_ensure_fresh(credential_id=credential.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=task)
    thread.start()
    html = _refresh(admin_client, credential)
    thread.join(timeout=30)

    assert token_server.request_count == 1
    assert results[0].ok
    assert "failed 0" in html


def test_refresh_selected_is_capped(
    admin_client, oauth_settings, token_server, make_credential, user, other_user, monkeypatch
):
    monkeypatch.setattr(credentials_admin, "ADMIN_REFRESH_MAX", 1)
    html = _refresh(admin_client, make_credential(user), make_credential(other_user))
    assert "Refresh at most 1 credentials here" in html
    assert "manage.py refresh_tokens" in html
    assert token_server.request_count == 0
