"""Login throttling (django-axes) on both login pages: per username, per address, unlockable."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]
LIMIT = 3


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = 0.25  # hours: the page says 15 minutes


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser(username="root", password="pw-root-123")


def post_login(url: str, username: str, password: str, address: str = "127.0.0.1"):
    return Client(REMOTE_ADDR=address).post(url, {"username": username, "password": password})


def logged_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_wrong_passwords_then_the_right_one_is_refused_with_a_clear_message(url, staff):
    for _ in range(LIMIT):
        response = post_login(url, "root", "wrong-password")
        assert response.status_code in (200, 429)
    response = post_login(url, "root", "pw-root-123")
    assert response.status_code == 429
    assert not logged_in(response)
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert f"after {LIMIT} failed" in page
    assert "Try again in 15 minutes" in page
    assert "Claude Runner" in page


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_below_the_limit_the_right_password_still_works(url, staff):
    for _ in range(LIMIT - 1):
        post_login(url, "root", "wrong-password")
    assert logged_in(post_login(url, "root", "pw-root-123"))


def test_a_username_is_locked_from_every_address(staff):
    for n in range(LIMIT):
        post_login("/accounts/login/", "root", "wrong", address=f"127.0.0.{10 + n}")
    assert (
        post_login("/accounts/login/", "root", "pw-root-123", address="127.0.0.99").status_code
        == 429
    )


def test_an_address_is_locked_for_every_username(staff, user):
    for n in range(LIMIT):
        post_login("/accounts/login/", f"nobody{n}", "wrong", address="127.0.0.7")
    refused = post_login("/accounts/login/", "alice", "pw-alice-123", address="127.0.0.7")
    assert refused.status_code == 429
    # Another address is not affected.
    assert logged_in(post_login("/accounts/login/", "alice", "pw-alice-123", address="127.0.0.8"))


def test_the_reset_command_unlocks(staff):
    for _ in range(LIMIT):
        post_login("/accounts/login/", "root", "wrong")
    assert post_login("/accounts/login/", "root", "pw-root-123").status_code == 429
    call_command("axes_reset")
    assert logged_in(post_login("/accounts/login/", "root", "pw-root-123"))


def test_an_admin_unlocks_by_deleting_the_access_attempts(staff, user):
    for _ in range(LIMIT):
        post_login("/accounts/login/", "alice", "wrong", address="127.0.0.5")
    assert (
        post_login("/accounts/login/", "alice", "pw-alice-123", address="127.0.0.5").status_code
        == 429
    )

    admin = Client()
    admin.force_login(staff)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "alice" in listing.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert logged_in(post_login("/accounts/login/", "alice", "pw-alice-123", address="127.0.0.5"))


def test_a_proxy_header_names_the_client_only_when_configured(settings, rf):
    from accounts.throttling import client_ip

    request = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="127.0.0.44")
    settings.LOGIN_CLIENT_IP_HEADER = ""
    assert client_ip(request) == "127.0.0.1"  # a client can send any header: not trusted
    settings.LOGIN_CLIENT_IP_HEADER = "X-Real-IP"
    assert client_ip(request) == "127.0.0.44"
