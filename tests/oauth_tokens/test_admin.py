"""The credentials admin: health only, never a token; filters follow the clock; actions work."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from oauth_tokens.models import CredentialSource, CredentialStatus, OAuthCredential

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:oauth_tokens_oauthcredential_changelist")
SECRET_BITS = ("sk-ant-", "original-access-token-value")


def _owners_in_order(html: str) -> list[str]:
    # The owner column is the row's link: <th class="field-owner_display"><a ...>alice</a></th>
    return re.findall(r'class="field-owner_display"><a href="[^"]*">([^<]+)</a>', html)


def _assert_no_token(html: str, *credentials: OAuthCredential) -> None:
    for bit in SECRET_BITS:
        assert bit not in html
    for credential in credentials:
        fresh = OAuthCredential.objects.get(pk=credential.pk)
        assert fresh.access_token not in html
        if fresh.refresh_token:
            assert fresh.refresh_token not in html
            assert fresh.refresh_token[:16] not in html  # not even a prefix


def test_changelist_shows_health_and_never_a_token(admin_client, make_credential, user):
    mine = make_credential(
        user,
        expires_in=2 * 3600,
        consecutive_failures=2,
        status=CredentialStatus.REFRESH_FAILED,
        last_refresh_error="OAuth endpoint failed after 3 attempt(s): HTTP 503",
        last_refreshed_at=timezone.now() - timedelta(hours=6),
    )
    global_one = make_credential(None, expires_in=None, refresh=False)

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    _assert_no_token(html, mine, global_one)
    assert sorted(_owners_in_order(html)) == ["alice", "global"]
    for heading in ("owner", "kind", "source", "status", "expires", "last refreshed at"):
        assert heading in html.lower()
    assert "Refresh failed" in html  # the status badge
    assert "in 1\xa0hour, 59\xa0minutes" in html or "in 2\xa0hours" in html  # words...
    assert str(timezone.localtime(mine.expires_at).year) in html  # ...and the exact time
    assert "HTTP 503" in html
    assert "never" in html  # the setup token never expires


def test_last_error_is_redacted(admin_client, make_credential, user):
    leaked = "sk-ant-ort01-" + "A" * 40
    make_credential(user, last_refresh_error=f"server echoed {leaked} back")
    html = admin_client.get(CHANGELIST).content.decode()
    assert leaked not in html
    assert "AAAAAAAAAAAAAAAAAAAA" not in html
    assert "server echoed [redacted] back" in html


def test_change_page_is_read_only_and_shows_no_token(admin_client, make_credential, user):
    credential = make_credential(user, expires_in=-60)
    url = reverse("admin:oauth_tokens_oauthcredential_change", args=[credential.pk])

    response = admin_client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    _assert_no_token(html, credential)
    assert 'name="access_token"' not in html
    assert 'name="refresh_token"' not in html
    assert 'name="_save"' not in html  # view only: no save button
    assert "Expired" in html  # the current status, though the stored column says valid

    # Posting anyway changes nothing (a stale save would undo a token rotation).
    before = OAuthCredential.objects.get(pk=credential.pk)
    response = admin_client.post(url, {"kind": "setup_token", "status": "valid"})
    assert response.status_code == 403
    after = OAuthCredential.objects.get(pk=credential.pk)
    assert (after.kind, after.refresh_token) == (before.kind, before.refresh_token)


def test_no_add_page(admin_client):
    assert admin_client.get(reverse("admin:oauth_tokens_oauthcredential_add")).status_code == 403


def test_status_filter_follows_the_clock(admin_client, make_credential, user, other_user):
    # Both stored as "valid"; one has expired since.
    make_credential(user, expires_in=-30, status=CredentialStatus.VALID)
    make_credential(other_user, expires_in=3 * 3600, status=CredentialStatus.VALID)

    expired = admin_client.get(CHANGELIST, {"status": "expired"}).content.decode()
    valid = admin_client.get(CHANGELIST, {"status": "valid"}).content.decode()

    assert _owners_in_order(expired) == ["alice"]
    assert _owners_in_order(valid) == ["bob"]


def test_expiry_window_kind_and_source_filters(admin_client, make_credential, user, other_user):
    carol = get_user_model().objects.create_user(username="carol")
    make_credential(user, expires_in=30 * 60)
    make_credential(other_user, expires_in=5 * 3600)
    make_credential(carol, expires_in=None, refresh=False, source=CredentialSource.IMPORTED)

    def owners(**params: str) -> list[str]:
        return sorted(_owners_in_order(admin_client.get(CHANGELIST, params).content.decode()))

    assert owners(expires="1h") == ["alice"]
    assert owners(expires="1d") == ["alice", "bob"]
    assert owners(expires="never") == ["carol"]
    assert owners(expires="expired") == []
    assert owners(kind="setup_token") == ["carol"]
    assert owners(source="imported") == ["carol"]


def test_search_by_user_and_sort_by_expiry(admin_client, make_credential, user, other_user):
    carol = get_user_model().objects.create_user(username="carol", email="carol@example.com")
    make_credential(user, expires_in=5 * 3600)
    make_credential(other_user, expires_in=600)
    make_credential(carol, expires_in=None, refresh=False)
    make_credential(None, expires_in=3600)

    by_default = _owners_in_order(admin_client.get(CHANGELIST).content.decode())
    found = _owners_in_order(admin_client.get(CHANGELIST, {"q": "carol@example"}).content.decode())

    assert by_default == ["bob", "global", "alice", "carol"]  # soonest first, never last
    assert found == ["carol"]


def test_failing_filter(admin_client, make_credential, user, other_user):
    make_credential(user, consecutive_failures=1, status=CredentialStatus.REFRESH_FAILED)
    make_credential(other_user)
    html = admin_client.get(CHANGELIST, {"failing": "yes"}).content.decode()
    assert _owners_in_order(html) == ["alice"]


def test_mark_invalid_action(admin_client, make_credential, user, other_user):
    target = make_credential(user)
    untouched = make_credential(other_user)

    response = admin_client.post(
        CHANGELIST, {"action": "mark_invalid", "_selected_action": [target.pk]}, follow=True
    )

    assert "Marked 1 credential(s) invalid" in response.content.decode()
    target.refresh_from_db()
    untouched.refresh_from_db()
    assert target.status == CredentialStatus.INVALID
    assert "Marked invalid in the admin by admin" in target.last_refresh_error
    assert untouched.status == CredentialStatus.VALID


def test_staff_without_permission_sees_nothing(client, make_credential, user):
    make_credential(user)
    staff = get_user_model().objects.create_user(username="staff", is_staff=True)
    client.force_login(staff)
    assert client.get(CHANGELIST).status_code == 403
    dashboard = reverse("admin:oauth_tokens_oauthcredential_dashboard")
    assert client.get(dashboard).status_code == 403
    assert "Token health dashboard" not in client.get(reverse("admin:index")).content.decode()


def _bulk_credentials(count: int) -> None:
    """`count` users with a credential each, spread over every status and expiry window."""
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"user{i:05d}") for i in range(count)]
    )
    now = timezone.now()
    statuses = list(CredentialStatus.values)
    OAuthCredential.objects.bulk_create(
        [
            OAuthCredential(
                owner=owner,
                kind="refreshable",
                source="user",
                access_token="sk-ant-oat01-bulk",
                refresh_token="sk-ant-ort01-bulk",
                expires_at=now + timedelta(minutes=(i * 37) % (9 * 24 * 60) - 60),
                status=statuses[i % len(statuses)],
                consecutive_failures=i % 3,
                last_refresh_error="HTTP 503" if i % 3 else "",
            )
            for i, owner in enumerate(users)
        ]
    )


@pytest.mark.parametrize("count", [5, 300])
def test_changelist_queries_do_not_grow(admin_client, django_assert_max_num_queries, count):
    _bulk_credentials(count)
    with django_assert_max_num_queries(8):
        response = admin_client.get(CHANGELIST, {"status": "expired", "expires": "7d"})
    assert response.status_code == 200
    with django_assert_max_num_queries(8):
        response = admin_client.get(CHANGELIST)
    assert len(_owners_in_order(response.content.decode())) == min(count, 100)
