"""Personal access tokens: made and shown once, checked, expired, revoked, throttled; they open
the API only, and a web session never opens the API."""

import re
import runpy
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from api.models import ApiToken, TokenScope
from api.rates import rate_parse
from api.services import (
    ApiTokenRefused,
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
)
from common.errors import InputError

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
SETTINGS = Path(__file__).resolve().parents[2] / "config" / "settings" / "api.py"


def test_a_new_token_is_stored_as_a_hash_and_authenticates(user):
    made = api_token_create(owner=user, name="ci", scope=TokenScope.READ)
    row = ApiToken.objects.get(pk=made.token.pk)
    assert made.secret.startswith("crt_" + row.prefix + "_")
    assert made.secret not in str(row.__dict__)  # only the hash is kept
    assert row.expires_at is not None
    assert timedelta(days=89) < row.expires_at - timezone.now() <= timedelta(days=90)
    assert api_token_authenticate(raw=made.secret, address="10.1.2.3").pk == row.pk
    row.refresh_from_db()
    assert row.last_used_address == "10.1.2.3"
    assert row.last_used_at is not None


@pytest.mark.parametrize(
    "raw",
    ["", "crt_", "crt_0123456789ab_wrong", "Bearer x", "crt_" + "a" * 300, "ghp_x", "crt_\udc80"],
)
def test_wrong_tokens_are_refused(user, raw):
    api_token_create(owner=user, name="ci", scope=TokenScope.READ)
    with pytest.raises(ApiTokenRefused, match="not valid"):
        api_token_authenticate(raw=raw, address=None)


def test_a_right_prefix_with_a_wrong_secret_is_refused(user):
    made = api_token_create(owner=user, name="ci", scope=TokenScope.READ)
    with pytest.raises(ApiTokenRefused, match="not valid"):
        api_token_authenticate(raw=made.secret[:-2] + "xx", address=None)


def test_expired_and_revoked_tokens_say_so(user):
    expired = api_token_create(owner=user, name="old", scope=TokenScope.READ, expires_in_days=7)
    ApiToken.objects.filter(pk=expired.token.pk).update(expires_at=timezone.now())
    with pytest.raises(ApiTokenRefused, match="expired"):
        api_token_authenticate(raw=expired.secret, address=None)
    revoked = api_token_create(owner=user, name="gone", scope=TokenScope.READ)
    assert api_token_revoke(token=revoked.token) is True
    assert api_token_revoke(token=revoked.token) is False
    with pytest.raises(ApiTokenRefused, match="revoked"):
        api_token_authenticate(raw=revoked.secret, address=None)


def test_never_expiring_is_an_explicit_choice(user):
    made = api_token_create(owner=user, name="forever", scope=TokenScope.READ, expires_in_days=None)
    assert made.token.expires_at is None
    for bad in (0, -1, 10**5000, 91):
        with pytest.raises(InputError):
            api_token_create(owner=user, name="x", scope=TokenScope.READ, expires_in_days=bad)


@pytest.mark.parametrize(
    ("name", "scope", "field"),
    [
        ("", "read", "name"),
        ("   ", "read", "name"),
        ("x" * 101, "read", "name"),
        ("a\u202eb", "read", "name"),
        ("a\x00b", "read", "name"),
        ("ok", "admin", "scope"),
    ],
)
def test_bad_names_and_scopes_are_refused(user, name, scope, field):
    with pytest.raises(InputError) as info:
        api_token_create(owner=user, name=name, scope=scope)
    assert info.value.field == field


def test_a_disabled_users_token_stops_working(user):
    made = api_token_create(owner=user, name="ci", scope=TokenScope.READ)
    user.is_active = False
    user.save()
    with pytest.raises(ApiTokenRefused, match="disabled"):
        api_token_authenticate(raw=made.secret, address=None)


@pytest.mark.parametrize(
    ("text", "requests", "seconds"),
    [("120/min", 120, 60), ("5/s", 5, 1), (" 1000 / hour ", 1000, 3600), ("1/day", 1, 86400)],
)
def test_rates_parse(text, requests, seconds):
    rate = rate_parse(text=text)
    assert (rate.requests, rate.seconds) == (requests, seconds)


@pytest.mark.parametrize("text", ["", "120", "0/min", "-1/min", "x/min", "10/fortnight", "1e3/s"])
def test_bad_rates_are_refused_when_the_settings_load(text, monkeypatch):
    with pytest.raises(ValueError, match="API_TOKEN_RATE"):
        rate_parse(text=text)
    monkeypatch.setenv("API_TOKEN_RATE", text)
    with pytest.raises(ImproperlyConfigured, match="API_TOKEN_RATE"):
        runpy.run_path(str(SETTINGS))


@pytest.mark.parametrize("seconds", ["0", "-1", "60", "0.001"])
def test_a_bad_poll_interval_is_refused_when_the_settings_load(seconds, monkeypatch):
    monkeypatch.setenv("API_WAIT_POLL_SECONDS", seconds)
    with pytest.raises(ImproperlyConfigured, match="API_WAIT_POLL_SECONDS"):
        runpy.run_path(str(SETTINGS))


# --- the settings page ------------------------------------------------------------------------


def _secret_in(html: str) -> str:
    found = re.search(r'<code id="new-token">(crt_[^<]+)</code>', html)
    assert found, html
    return found.group(1)


@pytest.mark.parametrize("headers", [{}, HTMX])
def test_the_page_shows_a_new_token_once_and_lists_it(user_client, user, headers):
    answer = user_client.post(
        "/settings/api-tokens/",
        {"name": "laptop", "scope": "tasks", "expires": "30"},
        headers=headers,
    )
    assert answer.status_code == 200
    assert "no-store" in answer["Cache-Control"]
    html = answer.content.decode()
    secret = _secret_in(html)
    token = ApiToken.objects.get(owner=user)
    assert (token.name, token.scope) == ("laptop", TokenScope.TASKS)
    assert token.expires_at is not None
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert api_token_authenticate(raw=secret, address=None).pk == token.pk
    assert ("<!doctype html>" in html.lower()) is not bool(headers)  # HTMX: the card alone
    again = user_client.get("/settings/api-tokens/").content.decode()
    assert secret not in again
    assert "laptop" in again
    assert f"crt_{token.prefix}…" in again


def test_never_is_offered_and_bad_input_is_a_field_error(user_client, user):
    page = user_client.get("/settings/api-tokens/").content.decode()
    assert '<option value="never">Never expires</option>' in page
    assert '<option value="90" selected>90 days</option>' in page
    answer = user_client.post("/settings/api-tokens/", {"name": "", "scope": "x", "expires": "9"})
    assert answer.status_code == 400
    assert not ApiToken.objects.exists()
    user_client.post("/settings/api-tokens/", {"name": "ci", "scope": "read", "expires": "never"})
    assert ApiToken.objects.get().expires_at is None


def test_revoking_from_the_page_and_never_another_users_token(
    user_client, user, other_user, make_token
):
    mine, theirs = make_token(user), make_token(other_user)
    answer = user_client.post(f"/settings/api-tokens/{theirs.token.pk}/revoke/", headers=HTMX)
    assert answer.status_code == 404
    assert ApiToken.objects.get(pk=theirs.token.pk).revoked_at is None
    answer = user_client.post(f"/settings/api-tokens/{mine.token.pk}/revoke/", headers=HTMX)
    assert answer.status_code == 200
    assert "Revoked" in answer.content.decode()
    assert ApiToken.objects.get(pk=mine.token.pk).revoked_at is not None
    assert user_client.get(f"/settings/api-tokens/{mine.token.pk}/revoke/").status_code == 405


def test_the_page_lists_only_the_users_own_tokens(user_client, other_user, make_token):
    make_token(other_user, name="bobs-secret-ci")
    assert "bobs-secret-ci" not in user_client.get("/settings/api-tokens/").content.decode()


def test_the_admin_shows_metadata_and_revokes_but_never_the_secret(admin_client, user, make_token):
    made = make_token(user, name="deploy")
    listing = admin_client.get("/admin/api/apitoken/").content.decode()
    assert "deploy" in listing
    assert made.token.prefix in listing
    detail = admin_client.get(f"/admin/api/apitoken/{made.token.pk}/change/").content.decode()
    for page in (listing, detail):
        assert made.secret not in page
        assert made.token.secret_hash not in page
    admin_client.post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [made.token.pk]},
    )
    assert ApiToken.objects.get(pk=made.token.pk).revoked_at is not None
    assert admin_client.get("/admin/api/apitoken/add/").status_code == 403


# --- the API only, and only the API ----------------------------------------------------------


def test_a_bearer_token_never_opens_a_web_page(client, bearer):
    for path in ("/tasks/", "/settings/api-tokens/", "/accounts/settings/code-agent/"):
        answer = client.get(path, headers=bearer)
        assert answer.status_code == 302
        assert "/accounts/login/" in answer["Location"]


def test_a_web_session_never_opens_the_api(user_client):
    answer = user_client.get("/api/tasks")
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"
    assert answer["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwdw==",
        "bearer crt_x",
        "Token crt_x",
        "Bearer " + "9" * 5000,
    ],
)
def test_malformed_authorization_headers_are_401_json(client, user, header):
    answer = client.get("/api/tasks", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.json()["code"] in ("unauthorized", "invalid_token")


def test_revoked_and_expired_tokens_get_401_with_the_reason(client, user, make_token):
    made = make_token(user)
    api_token_revoke(token=made.token)
    answer = client.get("/api/tasks", headers={"Authorization": f"Bearer {made.secret}"})
    assert answer.status_code == 401
    assert answer.json() == {
        "code": "invalid_token",
        "message": "The token was revoked.",
        "field": None,
    }


def test_each_token_is_throttled_on_its_own(client, user, make_token, settings):
    settings.API_TOKEN_RATE = "3/min"
    first, second = make_token(user), make_token(user)
    auth = {"Authorization": f"Bearer {first.secret}"}
    for _ in range(3):
        assert client.get("/api/tasks", headers=auth).status_code == 200
    refused = client.get("/api/tasks", headers=auth)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    other = client.get("/api/tasks", headers={"Authorization": f"Bearer {second.secret}"})
    assert other.status_code == 200
