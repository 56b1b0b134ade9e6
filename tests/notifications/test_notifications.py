"""Notifications: real SMTP and a webhook on loopback; once per event; never a secret."""

import json
import logging
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import urllib3.util.connection
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import preferences_get
from notifications.models import Delivery, DeliveryStatus, EventKind
from notifications.periodic import credentials_aging_check, periodic_run
from notifications.services import delivery_send, settings_get
from oauth_tokens.models import (
    AuditAction,
    CredentialAuditEvent,
    CredentialKind,
    CredentialSource,
    OAuthCredential,
)
from oauth_tokens.services import AuditSubject, credential_audit_record, credential_rejected
from oauth_tokens.signals import credential_refresh_failed
from tasks.models import CodingTask, TaskStatus
from tasks.queue import queue_sweep
from tasks.signals import task_finished
from tests.tasks.conftest import task_make

ROOT = Path(__file__).resolve().parents[2]
ACCESS = "sk-ant-oat01-notify-access-secret-value-0123456789"
REFRESH = "sk-ant-ort01-notify-refresh-secret-value-0123456789"
API_KEY = "sk-ant-api03-notify-api-key-secret-0123456789"
ENV_VALUE = "npm-registry-password-s3cr3t-value"


def body_of(mail) -> str:
    return mail.get_payload(decode=True).decode()


def make_task(owner, **values):
    values.setdefault("status", TaskStatus.SUCCEEDED)
    values.setdefault("repo_url", "https://github.com/example/repo.git")
    return task_make(owner, **values)


def announce(task, event="succeeded", wait=0):
    task_finished.send_robust(sender=CodingTask, task_id=task.pk, event=event, wait=wait)


@pytest.mark.django_db(transaction=True)
def test_a_finished_task_is_emailed_and_posted_once(smtp, webhook, listener):
    task = make_task(listener, usage={"cost_usd": "0.0123"})
    announce(task)
    announce(task)  # a retry of the same announcement
    queue_sweep()

    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["To"] == "carol@example.test"
    assert mail["Subject"] == f"[Claude Runner] Task {task.pk} succeeded"
    assert "Cost: $0.0123" in body_of(mail)
    assert len(webhook.bodies) == 1
    body = webhook.bodies[0]
    assert body["text"].startswith(f"*Task {task.pk} succeeded*")
    assert body["event"] == EventKind.TASK_SUCCEEDED
    assert (body["task_id"], body["status"]) == (task.pk, "succeeded")
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 2


@pytest.mark.django_db(transaction=True)
def test_no_message_contains_a_token_a_key_or_an_environment_value(smtp, webhook, listener):
    OAuthCredential.objects.create(
        owner=listener,
        kind=CredentialKind.REFRESHABLE,
        source=CredentialSource.USER,
        access_token=ACCESS,
        refresh_token=REFRESH,
    )
    prefs = preferences_get(user=listener)
    prefs.api_key, prefs.api_key_last4, prefs.agent_env = API_KEY, API_KEY[-4:], {"NPM": ENV_VALUE}
    prefs.save()
    leaky = f"boom {ACCESS} {REFRESH} {API_KEY} {ENV_VALUE} Bearer abc.def-ghi"
    task = make_task(
        listener,
        status=TaskStatus.FAILED,
        error_message=leaky,
        repo_url=f"https://x:{ENV_VALUE}@github.com/example/repo.git",
    )
    announce(task, "failed")
    queue_sweep()

    assert len(smtp.messages) == 1
    assert len(webhook.bodies) == 1
    sent = smtp.messages[0].as_string() + json.dumps(webhook.bodies)
    stored = json.dumps(list(Delivery.objects.values("subject", "text", "fields")))
    for secret in (ACCESS, REFRESH, API_KEY, ENV_VALUE, "abc.def-ghi"):
        assert secret not in sent
        assert secret not in stored
    assert "[redacted]" in sent


@pytest.mark.django_db(transaction=True)
def test_each_user_picks_events_and_channels(smtp, webhook, listener):
    chosen = settings_get(user=listener)
    chosen.events = [EventKind.TASK_FAILED]
    chosen.email_enabled = False
    chosen.save()
    announce(make_task(listener), "succeeded")
    announce(make_task(listener, status=TaskStatus.FAILED), "failed")
    queue_sweep()
    assert smtp.messages == []
    assert [b["event"] for b in webhook.bodies] == [EventKind.TASK_FAILED]


@pytest.mark.django_db(transaction=True)
def test_a_failing_webhook_is_retried_with_backoff_then_given_up_and_shown(
    settings, smtp, webhook, listener, admin_client
):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 60
    chosen = settings_get(user=listener)
    chosen.email_enabled = False
    chosen.save()
    webhook.next_statuses = [500, 502]
    announce(make_task(listener))  # first try: 500
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert "HTTP 500" in delivery.last_error
    assert delivery.next_attempt_at is not None
    first_retry = delivery.next_attempt_at - timezone.now()
    assert timedelta(seconds=50) < first_retry <= timedelta(seconds=60)
    # The tests' task backend cannot defer: the retry is the sweep's, when it is due.
    assert queue_sweep().others == 0  # not due yet
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    later = timezone.now() + timedelta(seconds=61)
    assert queue_sweep(now=later).others == 1  # 502
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    second_retry = delivery.next_attempt_at - timezone.now()
    assert timedelta(seconds=110) < second_retry <= timedelta(seconds=120)  # doubled
    assert webhook.bodies == []
    assert queue_sweep(now=later + timedelta(seconds=121)).others == 1
    assert len(webhook.bodies) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 3)

    webhook.next_statuses = [500, 500, 500]
    announce(make_task(listener))
    for minutes in (5, 20):
        queue_sweep(now=timezone.now() + timedelta(minutes=minutes))
    assert not Delivery.objects.filter(status=DeliveryStatus.PENDING).exists()
    failed = Delivery.objects.get(status=DeliveryStatus.FAILED)
    assert failed.attempts == 3
    page = admin_client.get(
        reverse("admin:notifications_delivery_changelist") + "?status__exact=failed"
    )
    assert page.status_code == 200
    assert "the webhook answered HTTP 500" in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_rejected_credential_says_sign_in_again_once(smtp, listener):
    credential = OAuthCredential.objects.create(
        owner=listener,
        kind=CredentialKind.SETUP_TOKEN,
        source=CredentialSource.USER,
        access_token=ACCESS,
    )
    assert credential_rejected(
        credential_id=credential.pk,
        http_status=401,
        reason="expired",
        at=timezone.now(),
        after_refresh=False,
    )
    assert not credential_rejected(
        credential_id=credential.pk,
        http_status=401,
        reason="again",
        at=timezone.now(),
        after_refresh=False,
    )
    queue_sweep()
    assert len(smtp.messages) == 1
    body = body_of(smtp.messages[0])
    assert "Your Claude OAuth tokens stopped working" in smtp.messages[0]["Subject"]
    assert "Sign in again" in body
    assert "HTTP 401" in body
    credential.refresh_from_db()
    assert credential.status == "invalid"


@pytest.mark.django_db(transaction=True)
def test_the_global_credential_dying_tells_the_superusers(smtp, listener):
    admin = get_user_model().objects.create_superuser("root", "root@example.test", "pw-root-123")
    credential = OAuthCredential.objects.create(
        owner=None,
        kind=CredentialKind.SETUP_TOKEN,
        source=CredentialSource.ENVIRONMENT,
        access_token=ACCESS,
    )
    credential_rejected(
        credential_id=credential.pk,
        http_status=403,
        reason="revoked",
        at=timezone.now(),
        after_refresh=False,
    )
    assert [m["To"] for m in smtp.messages] == [admin.email]
    assert "global Claude OAuth tokens stopped working" in smtp.messages[0]["Subject"]


@pytest.mark.django_db(transaction=True)
def test_repeated_refresh_failures_warn_once_per_streak(settings, smtp, listener):
    settings.NOTIFICATIONS_REFRESH_FAILURES = 3
    credential = OAuthCredential.objects.create(
        owner=listener,
        kind=CredentialKind.REFRESHABLE,
        source=CredentialSource.USER,
        access_token=ACCESS,
        refresh_token=REFRESH,
    )
    for failures in (1, 2, 3, 4):
        credential_refresh_failed.send_robust(
            sender=OAuthCredential,
            credential_id=credential.pk,
            owner_id=listener.pk,
            reason="token endpoint 503",
            consecutive_failures=failures,
        )
    assert len(smtp.messages) == 1
    assert "failed to refresh 3 times in a row" in body_of(smtp.messages[0])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("age_days", "stage"), [(336, 30), (359, 7), (364.5, 1)])
def test_setup_tokens_are_warned_before_their_year_is_up(smtp, listener, age_days, stage):
    OAuthCredential.objects.create(
        owner=listener,
        kind=CredentialKind.SETUP_TOKEN,
        source=CredentialSource.USER,
        access_token=ACCESS,
        saved_at=timezone.now() - timedelta(days=age_days),
    )
    credentials_aging_check(now=timezone.now())
    credentials_aging_check(now=timezone.now())  # the next periodic run: nothing new
    queue_sweep()
    assert len(smtp.messages) == 1
    assert f"stops working in about {stage} day" in body_of(smtp.messages[0])


@pytest.mark.django_db(transaction=True)
def test_a_fresh_setup_token_and_a_recently_refreshed_chain_are_not_warned_about(smtp, listener):
    OAuthCredential.objects.create(
        owner=listener,
        kind=CredentialKind.SETUP_TOKEN,
        source=CredentialSource.USER,
        access_token=ACCESS,
        saved_at=timezone.now() - timedelta(days=300),
    )
    OAuthCredential.objects.create(
        owner=None,
        kind=CredentialKind.REFRESHABLE,
        source=CredentialSource.ENVIRONMENT,
        access_token=ACCESS,
        refresh_token=REFRESH,
        last_refreshed_at=timezone.now() - timedelta(days=2),
    )
    report = periodic_run()
    assert report.aging_events == 0
    assert smtp.messages == []


@pytest.mark.django_db(transaction=True)
def test_an_idle_refresh_chain_is_warned_about(smtp, listener):
    OAuthCredential.objects.create(
        owner=listener,
        kind=CredentialKind.REFRESHABLE,
        source=CredentialSource.USER,
        access_token=ACCESS,
        refresh_token=REFRESH,
        last_refreshed_at=timezone.now() - timedelta(days=45),
    )
    periodic_run()
    periodic_run()
    assert len(smtp.messages) == 1
    assert "have not been refreshed since" in body_of(smtp.messages[0])


def _child_env(smtp, webhook) -> dict[str, str]:
    s = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PYTHONPATH": str(ROOT),
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
        "AGENT_EGRESS_TEST_ALLOW_LOOPBACK": f"127.0.0.1:{webhook.port}",
    }
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{s['NAME']}"
    return env


@pytest.mark.deploy  # fresh app processes
@pytest.mark.django_db(transaction=True)
def test_each_event_is_sent_exactly_once_across_two_worker_processes(smtp, webhook, listener):
    task = make_task(listener)
    start_at = time.time() + 4  # after both children have imported Django
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("_notify_worker.py")),
                str(task.pk),
                str(start_at),
            ],
            env=_child_env(smtp, webhook),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for child in children:
        out, err = child.communicate(timeout=90)
        assert child.returncode == 0, err
        assert out.strip().endswith("ok")
    assert len(smtp.messages) == 1
    assert len(webhook.bodies) == 1
    assert Delivery.objects.count() == 2


@pytest.mark.django_db
def test_webhook_urls_to_private_or_loopback_addresses_are_refused(client, listener, settings):
    settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = []
    client.force_login(listener)
    url = reverse("notifications:settings")
    for bad, words in [
        ("http://127.0.0.1:9/hook", "must use https"),
        ("https://127.0.0.1/hook", "loopback address"),
        ("https://10.1.2.3/hook", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://user:pw@hooks.example/x", "no user name or password"),
        ("ftp://hooks.example/x", "must start with https://"),
    ]:
        page = client.post(url, {"events": [EventKind.TASK_FAILED], "webhook_url": bad})
        assert page.status_code == 200
        text = page.content.decode()
        assert words in text, (bad, text[-2000:])
        assert "Nothing was saved" in text
    chosen = settings_get(user=listener)
    assert chosen.webhook_url.startswith("http://127.0.0.1:")  # the saved one is unchanged
    assert len(chosen.events) == len(EventKind.values)


@pytest.mark.django_db
def test_the_notifications_page_saves_choices_and_never_shows_the_webhook(
    client, listener, webhook
):
    client.force_login(listener)
    url = reverse("notifications:settings")
    page = client.get(url)
    assert page.status_code == 200
    assert f"{webhook.port}/hook" not in page.content.decode()  # only the host is shown
    assert "127.0.0.1" in page.content.decode()
    answer = client.post(
        url, {"events": [EventKind.TASK_WAITING, EventKind.CREDENTIAL_DEAD], "webhook_url": ""}
    )
    assert answer.status_code == 302
    chosen = settings_get(user=listener)
    assert chosen.events == [EventKind.TASK_WAITING, EventKind.CREDENTIAL_DEAD]
    assert chosen.email_enabled is False
    assert chosen.webhook_url  # kept: an empty field keeps it
    client.post(url, {"events": [], "remove_webhook": "on"})
    assert settings_get(user=listener).webhook_url == ""


@pytest.mark.django_db
def test_the_audit_log_is_filterable_and_append_only(admin_client, listener):
    credential_audit_record(
        action=AuditAction.USED,
        subject=AuditSubject(
            credential_kind="server_api_key", user_id=listener.pk, credential_id=None
        ),
        user=listener,
        task_id=7,
        outcome="succeeded",
        detail=f"key {API_KEY} used",
    )
    credential_audit_record(
        action=AuditAction.REFRESH_FAILED,
        subject=AuditSubject(credential_kind="global_oauth", user_id=None, credential_id=None),
        outcome="transient",
    )
    event = CredentialAuditEvent.objects.get(action=AuditAction.USED)
    assert API_KEY not in event.detail
    assert "[redacted]" in event.detail
    url = reverse("admin:oauth_tokens_credentialauditevent_changelist")
    page = admin_client.get(url + "?action__exact=used").content.decode()
    assert "carol" in page
    assert "succeeded" in page
    assert "transient" not in page
    assert admin_client.get(url + "add/").status_code == 403
    change = admin_client.get(url + f"{event.pk}/change/")
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert admin_client.post(url + f"{event.pk}/delete/").status_code == 403
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()


@pytest.mark.django_db
def test_the_admin_shows_usage_by_user(admin_client, listener):
    make_task(
        listener,
        usage={"input_tokens": 1000, "output_tokens": 200, "cost_usd": "1.5"},
        limit={"waits": 1},
    )
    make_task(listener, usage={"input_tokens": 10, "output_tokens": 2, "cost_usd": "0.5"})
    old = make_task(listener, usage={"input_tokens": 99999})
    CodingTask.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    page = admin_client.get(reverse("admin:usage_userusage_changelist")).content.decode()
    row = page[page.index("carol") :][:1500]
    assert ">2<" in row
    assert ">1010<" in row
    assert ">202<" in row
    assert "2.0000" in row
    assert "99999" not in page


@pytest.mark.django_db(transaction=True)
def test_the_refresh_tokens_run_is_also_the_periodic_notifications_run(smtp, listener):
    OAuthCredential.objects.create(
        owner=listener,
        kind=CredentialKind.SETUP_TOKEN,
        source=CredentialSource.USER,
        access_token=ACCESS,
        saved_at=timezone.now() - timedelta(days=359),
    )
    call_command("refresh_tokens", "--json")
    assert len(smtp.messages) == 1
    assert "stops working in about 7 days" in body_of(smtp.messages[0])
    call_command("notifications_periodic")  # the sibling command for cron: nothing new
    assert len(smtp.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_a_refresh_tokens_run_is_audited_and_a_refused_chain_notifies(
    smtp, listener, other_user, oauth_settings, token_server, make_credential
):

    other_user.email = "bob@example.test"
    other_user.save()
    good = make_credential(listener, expires_in=60)
    dead = make_credential(other_user, expires_in=60)
    token_server.revoke(dead.refresh_token)  # the endpoint answers invalid_grant

    with pytest.raises(CommandError, match="1 credential"):
        call_command("refresh_tokens")
    audit = set(CredentialAuditEvent.objects.values_list("credential_id", "action", "outcome"))
    assert (good.pk, AuditAction.REFRESHED, "batch") in audit
    assert (dead.pk, AuditAction.REFRESH_FAILED, "permanent") in audit
    assert [m["To"] for m in smtp.messages] == ["bob@example.test"]
    assert "stopped working" in smtp.messages[0]["Subject"]


@pytest.mark.django_db(transaction=True)  # the send is queued when the event is committed
def test_a_failed_webhook_send_never_records_or_logs_the_url_path(
    settings, listener, admin_client, client, caplog
):
    # A Slack webhook's path is its secret; a refused connection must not leak it anywhere.
    secret = "T0AAAA/B0BBBB/XoXoSecretWebhookPathToken1234567890"
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: the send is refused
    settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = [f"127.0.0.1:{port}"]
    chosen = settings_get(user=listener)
    chosen.email_enabled = False
    chosen.webhook_url = f"http://127.0.0.1:{port}/services/{secret}?token=q-{secret}"
    chosen.save()
    caplog.set_level(logging.WARNING, logger="notifications")
    announce(make_task(listener))
    queue_sweep()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert "ECONNREFUSED" in delivery.last_error  # the reason, without the URL
    assert "XoXo" not in delivery.last_error
    assert "/services" not in delivery.last_error
    assert "XoXo" not in caplog.text
    assert "ECONNREFUSED" in caplog.text
    admin_page = admin_client.get(reverse("admin:notifications_delivery_changelist"))
    assert "ECONNREFUSED" in admin_page.content.decode()
    assert "XoXo" not in admin_page.content.decode()
    client.force_login(listener)
    own_page = client.get(reverse("notifications:settings")).content.decode()
    assert "ECONNREFUSED" in own_page
    assert "XoXo" not in own_page


@pytest.mark.django_db
def test_agent_text_in_a_webhook_cannot_ping_everyone_or_hide_a_link(webhook, listener):
    # Slack-compatible receivers read <!channel>, <url|label> and & in `text` as markup.
    delivery = Delivery.objects.create(
        key="escape",
        recipient=listener,
        event=EventKind.TASK_FAILED,
        channel="webhook",
        subject="Task <!here> failed",
        text="<!channel> see <https://evil.example|the diff> & more",
        fields={"task_title": "<!channel>"},
    )
    assert delivery_send(delivery_id=delivery.pk).status == DeliveryStatus.SENT
    (body,) = webhook.bodies
    assert body["text"] == (
        "*Task &lt;!here&gt; failed*\n"
        "&lt;!channel&gt; see &lt;https://evil.example|the diff&gt; &amp; more"
    )
    assert body["task_title"] == "<!channel>"  # structured fields stay raw JSON


@pytest.mark.django_db
def test_a_webhook_is_sent_to_the_address_that_was_checked_not_a_rebound_one(monkeypatch, listener):
    # DNS rebinding: the name answers a public address for the check, loopback afterwards.
    # Nothing may reach the loopback listener; and no traffic leaves loopback in this test:
    # a connection to any other address is recorded and refused here, never made.

    listener_socket = socket.socket()
    listener_socket.bind(("127.0.0.1", 0))
    listener_socket.listen(5)
    listener_socket.settimeout(0.5)
    port = listener_socket.getsockname()[1]
    public = "93.184.216.34"
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example":
            lookups.append(host)
            host = public if len(lookups) % 2 else "127.0.0.1"
        return real_getaddrinfo(host, *args, **kwargs)

    dialled: list[str] = []
    real_connect = urllib3.util.connection.create_connection

    def loopback_only(address, *args, **kwargs):
        dialled.append(address[0])
        if address[0] == public:
            raise ConnectionRefusedError(111, "refused by the test: not loopback")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", loopback_only)
    chosen = settings_get(user=listener)
    chosen.email_enabled = False
    chosen.webhook_url = f"https://rebind.example:{port}/hook"
    chosen.save()
    delivery = Delivery.objects.create(
        key="rebind", recipient=listener, event=EventKind.TASK_FAILED, channel="webhook"
    )
    try:
        assert delivery_send(delivery_id=delivery.pk).status == DeliveryStatus.PENDING
        with pytest.raises(TimeoutError):
            listener_socket.accept()  # nothing reached loopback
    finally:
        listener_socket.close()
    assert lookups == ["rebind.example"]  # resolved once, for the check
    assert dialled == [public]  # and connected to what the check saw
    delivery.refresh_from_db()
    assert "ECONNREFUSED" in delivery.last_error


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_the_notifications_page_is_never_cached(client, listener, method):
    # It shows the webhook's host and the deliveries' errors.
    client.force_login(listener)
    response = getattr(client, method)(reverse("notifications:settings"), {"events": []})
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db(transaction=True)
def test_direction_characters_in_a_failed_tasks_message_are_shown_as_escapes(
    smtp, webhook, listener
):
    # The error message may quote the agent's answer (tasks.run.finish): the task page shows
    # its direction characters as escapes, and so should the mail and the webhook.
    task = make_task(
        listener,
        status=TaskStatus.FAILED,
        error_message="The agent says: renamed invoice\u202egpj.sh",
    )
    announce(task, "failed")
    queue_sweep()

    assert len(smtp.messages) == 1
    assert len(webhook.bodies) == 1
    mail = body_of(smtp.messages[0])
    assert "invoice\\u202egpj.sh" in mail
    assert "\u202e" not in mail
    assert "\u202e" not in webhook.bodies[0]["text"]
