"""A webhook URL the server cannot use is a field error that says what is wrong: never a 500,
whatever is typed (the notification settings page, and the check behind it)."""

import socket
from unittest import mock

import pytest
from django.urls import reverse
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings

from common.errors import InputError
from notifications.egress import webhook_url_check
from notifications.models import EventKind
from notifications.services import settings_get
from tests.fuzz.strategies import url_ish


def _resolve_without_dns(host: str, port: int) -> list[str]:
    # What getaddrinfo does before any lookup: encode the name with IDNA, which raises
    # UnicodeError for a name DNS cannot carry. Then a public answer, without any traffic.
    host.encode("idna")
    return ["93.184.216.34"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("https://a..b/hook", "has an empty part (two dots in a row"),
        ("https://" + "a" * 64 + ".example.com/hook", "has a part longer than 63 characters"),
        ("https://.example.com/x", "has an empty part"),
        ("https://bücher.example/hook", "xn--"),
        ("https://[::1/hook", "not a valid URL"),
        ("https://hooks.example.com:0/x", "port"),
        ("https://hooks_.example.com/x", "only letters, digits and"),
    ],
)
def test_a_webhook_host_dns_cannot_take_is_a_field_error(client, listener, bad, words):
    client.force_login(listener)
    page = client.post(
        reverse("notifications:settings"), {"events": [EventKind.TASK_FAILED], "webhook_url": bad}
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert "Nothing was saved" in text
    assert words in text, text[-3000:]
    assert settings_get(user=listener).webhook_url.startswith("http://127.0.0.1:")  # kept


@given(url=url_ish)
@example(url="https://a..b/hook")
@example(url="https://" + "a" * 64 + ".example.com/hook")
@example(url="https://.example.com/x")
@example(url="https://" + "a." * 130 + "com/x")
def test_any_webhook_url_is_accepted_or_refused_with_a_reason(url: str) -> None:
    try:
        checked, addresses = webhook_url_check(url=url, resolve=_resolve_without_dns)
    except InputError as exc:
        assert exc.message.strip()
    else:
        assert checked == url.strip()
        assert checked.lower().startswith("https://")
        assert addresses == ["93.184.216.34"]


def _getaddrinfo_without_dns(host, port, *args, **kwargs):
    _resolve_without_dns(str(host), int(port))
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]


@pytest.mark.django_db
@hypothesis_settings(max_examples=40)
@given(url=url_ish)
@example(url="https://a..b/hook")
@example(url="https://.example.com/x")
def test_the_notifications_page_never_answers_500(client, listener, url):
    client.force_login(listener)
    with mock.patch("socket.getaddrinfo", _getaddrinfo_without_dns):
        page = client.post(
            reverse("notifications:settings"),
            {"events": [EventKind.TASK_FAILED], "webhook_url": url},
        )
    assert page.status_code in (200, 302)
    if page.status_code == 200 and url.strip():
        assert "Nothing was saved" in page.content.decode()
