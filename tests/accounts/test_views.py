import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.models import UserPreferences
from accounts.selectors import preferences_get


@pytest.mark.django_db
def test_admin_pages_need_a_login(client):
    response = client.get("/admin/accounts/userpreferences/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
def test_home_redirects_anonymous_visitor_to_login_with_next(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next=/"


@pytest.mark.django_db
def test_login_page_is_public_and_login_works(client, user):
    assert client.get(reverse("accounts:login")).status_code == 200
    response = client.post(
        reverse("accounts:login"), {"username": "alice", "password": "pw-alice-123"}
    )
    assert response.status_code == 302
    assert client.get(reverse("tasks:list")).status_code == 200


@pytest.mark.django_db
def test_wrong_password_says_so(client, user):
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


@pytest.mark.django_db
def test_logout_is_a_post_and_ends_the_session(user_client):
    assert user_client.get(reverse("tasks:list")).status_code == 200
    response = user_client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert user_client.get(reverse("tasks:list")).status_code == 302


@pytest.mark.django_db
def test_signup_is_off_by_default(client):
    assert client.get(reverse("accounts:signup")).status_code == 404
    assert b"Sign up" not in client.get(reverse("accounts:login")).content


@pytest.mark.django_db
def test_signup_can_be_turned_on(client, settings):
    settings.ACCOUNTS_ALLOW_SIGNUP = True
    response = client.post(
        reverse("accounts:signup"),
        {"username": "carol", "password1": "a-long-pass-9876", "password2": "a-long-pass-9876"},
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="carol").exists()
    assert client.get(reverse("tasks:list")).status_code == 200


@pytest.mark.django_db
def test_preferences_are_created_on_first_use(user):
    assert not UserPreferences.objects.filter(user=user).exists()
    prefs = preferences_get(user=user)
    assert prefs.use_oauth is False
    assert prefs.api_key == ""
    assert preferences_get(user=user).pk == prefs.pk


@pytest.mark.django_db
def test_admin_never_shows_the_api_key(client, user):
    admin = get_user_model().objects.create_superuser("root", password="pw-root-123")
    UserPreferences.objects.create(
        user=user,
        api_key="sk-ant-api03-admin-must-not-see-this-wxyz",
        api_key_last4="wxyz",
        agent_env={"GITHUB_TOKEN": "ghp_adminhidden"},
    )
    client.force_login(admin)
    listing = client.get(reverse("admin:accounts_userpreferences_changelist"))
    prefs = UserPreferences.objects.get(user=user)
    detail = client.get(reverse("admin:accounts_userpreferences_change", args=[prefs.pk]))
    for response in (listing, detail):
        assert response.status_code == 200
        assert b"admin-must-not-see-this" not in response.content
        assert b"ghp_adminhidden" not in response.content
    assert b"wxyz" in listing.content
    assert b"GITHUB_TOKEN" in detail.content


@pytest.mark.django_db
def test_admin_bootstrap_prints_password_once(capsys):
    from django.core.management import call_command

    call_command("admin_bootstrap")
    first = capsys.readouterr().out
    assert "username: admin" in first
    assert "password: " in first
    call_command("admin_bootstrap")
    second = capsys.readouterr().out
    assert "password:" not in second
    assert "exists" in second
