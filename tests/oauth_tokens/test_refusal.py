"""credential_rejected: what a task's gateway saw the model API refuse, and what it makes of the
credential (dead now, whatever its expiry says, or renewed by force before the next task)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from oauth_tokens.formats import credential_input_parse
from oauth_tokens.models import AuditAction, CredentialAuditEvent, CredentialStatus, OAuthCredential
from oauth_tokens.services import (
    OAuthState,
    credential_ensure_fresh,
    credential_rejected,
    credential_store,
    oauth_usability,
    refresh_buffer,
)
from oauth_tokens.signals import credential_failed

pytestmark = pytest.mark.django_db

SETUP_TOKEN = "sk-ant-oat01-refusal-setup-token-0123456789abcdef"


@pytest.fixture
def failed_signals():
    heard: list[int] = []

    def listen(*, credential_id, **_):
        heard.append(credential_id)

    credential_failed.connect(listen, dispatch_uid="test-refusal")
    yield heard
    credential_failed.disconnect(dispatch_uid="test-refusal")


def refuse(credential, *, after_refresh: bool, at=None) -> bool:
    return credential_rejected(
        credential_id=credential.pk,
        http_status=401,
        reason="the API answered 401",
        at=at or timezone.now(),
        after_refresh=after_refresh,
        task_id=7,
    )


def usability(credential):
    credential.refresh_from_db()
    return oauth_usability(credential=credential, now=timezone.now(), buffer=refresh_buffer())


def test_a_token_refused_after_a_forced_refresh_is_dead_though_unexpired(
    user, make_credential, failed_signals
):
    credential = make_credential(user, expires_in=5 * 3600)
    assert refuse(credential, after_refresh=True)
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.INVALID
    assert credential.refused_at is not None
    assert usability(credential).state == OAuthState.DEAD
    assert "Sign in again" in usability(credential).reason
    assert failed_signals == [credential.pk]
    event = CredentialAuditEvent.objects.get(task_id=7, action=AuditAction.REJECTED)
    assert "seen by the task's gateway" in event.detail
    # Told once: a second report of the same refusal changes nothing.
    assert not refuse(credential, after_refresh=True)
    assert failed_signals == [credential.pk]


def test_a_refusal_whose_renewal_only_failed_for_a_while_is_renewed_first(
    user, make_credential, oauth_settings, failed_signals
):
    credential = make_credential(user, expires_in=5 * 3600)
    OAuthCredential.objects.filter(pk=credential.pk).update(status=CredentialStatus.REFRESH_FAILED)
    assert refuse(credential, after_refresh=False)
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.REFRESH_FAILED
    assert failed_signals == []  # not dead yet: a refresh may still bring a working token
    found = usability(credential)
    assert (found.state, found.force_refresh) == (OAuthState.RETRY, True)
    # The next renewal works: a new access token, and the refusal is history.
    assert credential_ensure_fresh(credential_id=credential.pk, force=True).refreshed
    credential.refresh_from_db()
    assert credential.refused_at is None
    assert usability(credential).state == OAuthState.READY


def test_a_refusal_of_tokens_since_replaced_is_ignored(user, make_credential):
    credential = make_credential(user, saved_at=timezone.now() - timedelta(hours=1))
    seen_at = timezone.now() - timedelta(seconds=5)
    credential_store(owner=user, parsed=credential_input_parse(raw=SETUP_TOKEN))
    assert not refuse(credential, after_refresh=True, at=seen_at)
    credential.refresh_from_db()
    assert (credential.status, credential.refused_at) == (CredentialStatus.VALID, None)


def test_saving_new_tokens_brings_a_refused_credential_back(user, make_credential):
    credential = make_credential(user, refresh=False, saved_at=timezone.now() - timedelta(hours=1))
    assert refuse(credential, after_refresh=False)
    assert usability(credential).state == OAuthState.DEAD
    credential_store(owner=user, parsed=credential_input_parse(raw=SETUP_TOKEN))
    assert usability(credential).state == OAuthState.READY
