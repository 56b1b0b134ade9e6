"""The notifications page: the email box tells the truth, a refused webhook keeps what was typed."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from notifications.models import EventKind
from notifications.services import settings_get

DUMMY = {"default": {"BACKEND": "django.core.mail.backends.dummy.EmailBackend"}}
CONSOLE = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
LOCMEM = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
URL = "/settings/notifications/"


def email_box(page: str) -> str:
    found = re.search(r'<input type="checkbox" name="email_enabled"[^>]*>', page)
    assert found, page
    return found[0]


@pytest.fixture
def member(db):
    return get_user_model().objects.create_user(
        username="dora", password="pw-dora-123", email="dora@example.test"
    )


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


def test_without_email_url_the_box_is_off_and_says_why(member_client, member, settings):
    settings.MAILERS = DUMMY
    page = member_client.get(URL).content.decode()
    assert "checked" not in email_box(page)
    assert "disabled" in email_box(page)
    assert "Email is not set up on this server (the administrator sets EMAIL_URL)." in page
    assert settings_get(user=member).email_enabled is False


def test_with_the_console_backend_the_box_is_not_ticked_by_default(member_client, member, settings):
    settings.MAILERS = CONSOLE
    page = member_client.get(URL).content.decode()
    assert "checked" not in email_box(page)
    assert "disabled" not in email_box(page)  # a developer may still tick it
    assert "prints email in its log instead of sending it" in page


def test_a_user_without_an_address_gets_no_ticked_box_and_is_told_why(
    member_client, member, settings
):
    settings.MAILERS = LOCMEM
    member.email = ""
    member.save()
    page = member_client.get(URL).content.decode()
    assert "checked" not in email_box(page)
    assert "disabled" in email_box(page)
    assert "Your account has no email address: ask an administrator to add one." in page


def test_where_email_arrives_the_box_is_ticked_with_the_address(member_client, settings):
    settings.MAILERS = LOCMEM
    page = member_client.get(URL).content.decode()
    assert "checked" in email_box(page)
    assert "Email me at <code>dora@example.test</code>" in page
    assert "email-note" not in page


def test_an_old_ticked_choice_is_shown_off_while_email_cannot_arrive(
    member_client, member, settings
):
    settings.MAILERS = LOCMEM
    chosen = settings_get(user=member)
    assert chosen.email_enabled is True
    settings.MAILERS = DUMMY
    page = member_client.get(URL).content.decode()
    assert "checked" not in email_box(page)
    # A disabled box cannot be ticked by a crafted POST either.
    member_client.post(URL, {"events": [EventKind.TASK_FAILED], "email_enabled": "on"})
    assert settings_get(user=member).email_enabled is False


def test_a_refused_webhook_keeps_the_typed_url_and_shows_an_error(member_client, member, settings):
    settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = []
    typed = "https://10.1.2.3/services/T000/B000/secret-path"
    response = member_client.post(
        URL, {"events": [EventKind.TASK_FAILED], "webhook_url": typed}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f'value="{typed}"' in page  # as typed, to be corrected
    error = re.search(
        r'<div class="error-box" role="alert" id="id_webhook_url_error">([^<]*)', page
    )
    assert error
    assert "private" in error[1]
    assert 'aria-invalid="true"' in page
    assert "Notification settings saved" not in page
    assert settings_get(user=member).webhook_url == ""


def test_a_saved_webhook_is_never_put_back_into_the_field(member_client, member, settings):
    chosen = settings_get(user=member)
    chosen.webhook_url = "https://hooks.example.test/services/T000/B000/secret-path"
    chosen.webhook_host = "hooks.example.test"
    chosen.save()
    page = member_client.get(reverse("notifications:settings")).content.decode()
    assert "secret-path" not in page
    assert "hooks.example.test" in page
