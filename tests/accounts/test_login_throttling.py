"""Login throttling (django-axes) on both login pages: per (username, address) pair, with a
higher per-address limit; how many tries are left; a lockout page with the exact command."""

import html
import shlex

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from accounts.throttling import unlock_commands
from tests.test_settings_guard import ROOT, run_check

LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]
LIMIT = 5
ADDRESS_LIMIT = 12


@pytest.fixture(autouse=True)
def limits(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = ADDRESS_LIMIT
    settings.AXES_COOLOFF_TIME = 0.25  # hours: the page says 15 minutes


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser(username="root", password="pw-root-123")


def post_login(url: str, username: str, password: str, address: str = "127.0.0.1"):
    return Client(REMOTE_ADDR=address).post(url, {"username": username, "password": password})


def logged_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_wrong_passwords_then_the_right_one_is_refused_with_a_clear_message(url, staff):
    for _ in range(LIMIT):
        response = post_login(url, "root", "wrong-password")
        assert response.status_code in (200, 429)
    response = post_login(url, "root", "pw-root-123")
    assert response.status_code == 429
    assert not logged_in(response)
    page = " ".join(text(response).split())
    assert "Too many failed logins" in page
    assert f"Logging in as <strong>root</strong> from this address is locked after {LIMIT}" in page
    assert "Other users can still log in." in page
    assert "Try again in 15 minutes." in page
    # The remedy that works while the admin is locked out: a command on the server.
    assert ".venv/bin/python manage.py axes_reset_ip_username 127.0.0.1 root" in page
    assert ".venv/bin/python manage.py axes_reset_username root" in page
    assert "Claude Runner" in page


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_below_the_limit_the_right_password_still_works(url, staff):
    for _ in range(LIMIT - 1):
        post_login(url, "root", "wrong-password")
    assert logged_in(post_login(url, "root", "pw-root-123"))


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_alice_failing_five_times_does_not_lock_out_the_admin_from_the_same_address(
    url, staff, user
):
    for _ in range(LIMIT):
        post_login(url, "alice", "wrong", address="127.0.0.5")
    assert post_login(url, "alice", "pw-alice-123", address="127.0.0.5").status_code == 429
    assert logged_in(post_login(url, "root", "pw-root-123", address="127.0.0.5"))


def test_a_locked_pair_leaves_the_same_username_free_from_another_address(staff):
    for _ in range(LIMIT):
        post_login("/accounts/login/", "root", "wrong", address="127.0.0.10")
    assert post_login("/accounts/login/", "root", "pw-root-123", "127.0.0.10").status_code == 429
    assert logged_in(post_login("/accounts/login/", "root", "pw-root-123", "127.0.0.11"))


def test_the_address_limit_still_locks_a_sprayer(staff, user):
    for n in range(ADDRESS_LIMIT):
        post_login("/accounts/login/", f"nobody{n}", "wrong", address="127.0.0.7")
    refused = post_login("/accounts/login/", "alice", "pw-alice-123", address="127.0.0.7")
    assert refused.status_code == 429
    page = " ".join(text(refused).split())
    assert "Logging in from this address is locked, for every username" in page
    assert f"after {ADDRESS_LIMIT} failed attempts" in page
    assert ".venv/bin/python manage.py axes_reset_ip 127.0.0.7" in page
    # Another address is not affected.
    assert logged_in(post_login("/accounts/login/", "alice", "pw-alice-123", address="127.0.0.8"))


def test_one_accounts_success_does_not_reset_the_addresss_count(staff, user):
    for n in range(ADDRESS_LIMIT - 1):
        post_login("/accounts/login/", f"nobody{n}", "wrong", address="127.0.0.7")
    assert logged_in(post_login("/accounts/login/", "alice", "pw-alice-123", address="127.0.0.7"))
    post_login("/accounts/login/", "nobody-else", "wrong", address="127.0.0.7")
    assert post_login("/accounts/login/", "root", "pw-root-123", "127.0.0.7").status_code == 429


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_the_login_page_says_how_many_tries_are_left_from_the_third_failure(url, staff):
    pages = [" ".join(text(post_login(url, "root", "wrong")).split()) for _ in range(LIMIT - 1)]
    for page in pages[:2]:
        assert "more failed login" not in page
    assert (
        "2 more failed logins as \u201croot\u201d from this address and it is locked for "
        "15 minutes (other users are not affected)." in pages[2]
    )
    assert "1 more failed login as \u201croot\u201d" in pages[3]
    # Still the usual words first: which of the two was wrong is not told.
    assert "correct username and password" in pages[3]


def test_the_login_page_warns_when_the_address_is_nearly_locked(staff):
    for n in range(ADDRESS_LIMIT - 2):
        page = " ".join(text(post_login("/accounts/login/", f"nobody{n}", "wrong")).split())
    assert (
        "2 more failed logins from this address, whatever the username, and it is locked for "
        "15 minutes." in page
    )


def test_the_reset_command_unlocks(staff):
    for _ in range(LIMIT):
        post_login("/accounts/login/", "root", "wrong")
    assert post_login("/accounts/login/", "root", "pw-root-123").status_code == 429
    call_command("axes_reset_ip_username", "127.0.0.1", "root")
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


def test_without_a_cooloff_the_lockout_lasts_until_an_admin_unlocks(settings, staff):
    from config.settings.login import cooloff_hours

    assert cooloff_hours(0) is None  # 0 hours would forget every failure at once
    assert cooloff_hours(15) == 0.25
    settings.AXES_COOLOFF_TIME = None
    for _ in range(LIMIT):
        post_login("/accounts/login/", "root", "wrong")
    AccessAttempt.objects.update(attempt_time="2000-01-01T00:00:00Z")  # long ago
    refused = post_login("/accounts/login/", "root", "pw-root-123")
    assert refused.status_code == 429
    assert "It stays locked until an administrator unlocks it." in text(refused)


def test_a_hostile_username_is_shown_quoted_in_the_command(staff):
    name = "x; rm -rf ~ $(id)"
    for _ in range(LIMIT):
        post_login("/accounts/login/", name, "wrong")
    page = text(post_login("/accounts/login/", name, "wrong"))
    assert "axes_reset_username 'x; rm -rf ~ $(id)'" in page


@given(username=st.text(max_size=60), address=st.text(max_size=40))
def test_unlock_commands_always_pass_the_name_and_address_as_one_argument_each(username, address):
    pair, by_name = unlock_commands(username=username, address=address, by_address=False)
    assert shlex.split(pair)[-3:] == [
        "axes_reset_ip_username",
        address or "ADDRESS",
        username or "NAME",
    ]
    assert shlex.split(by_name)[-2:] == ["axes_reset_username", username or "NAME"]
    (by_ip,) = unlock_commands(username=username, address=address, by_address=True)
    assert shlex.split(by_ip)[-2:] == ["axes_reset_ip", address or "ADDRESS"]


def test_an_address_limit_below_the_pair_limit_is_refused_at_start():
    keys = {"SECRET_KEY": "s" * 50, "FIELD_ENCRYPTION_KEYS": "x", "PYTHONPATH": str(ROOT)}
    result = run_check(**keys, LOGIN_FAILURE_LIMIT="5", LOGIN_ADDRESS_FAILURE_LIMIT="3")
    assert result.returncode != 0
    assert "LOGIN_ADDRESS_FAILURE_LIMIT (3) is below LOGIN_FAILURE_LIMIT (5)" in result.stderr


def test_a_proxy_header_names_the_client_only_when_configured(settings, rf):
    from accounts.throttling import client_ip

    request = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="127.0.0.44")
    settings.LOGIN_CLIENT_IP_HEADER = ""
    assert client_ip(request) == "127.0.0.1"  # a client can send any header: not trusted
    settings.LOGIN_CLIENT_IP_HEADER = "X-Real-IP"
    assert client_ip(request) == "127.0.0.44"
