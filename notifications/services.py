"""Sending notifications: record each event once per recipient and channel (insert-or-skip on
a unique key), send each delivery once (claimed by one conditional UPDATE), say when a failure is
tried again (doubling delays; notifications.background schedules it), give up after
NOTIFICATIONS_MAX_ATTEMPTS and show it in the admin.
"""

import errno
import logging
import os
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from common.errors import InputError
from common.logging import secrets_redact

from .egress import webhook_post, webhook_url_check
from .events import Event
from .messages import message_scrub
from .models import Channel, Delivery, DeliveryStatus, EventKind, NotificationSettings
from .selectors import email_available, email_channel_get

logger = logging.getLogger("notifications")

CLAIM_SECONDS = 120  # longer than one send may take (timeouts below)
WEBHOOK_TIMEOUT = 10


def settings_get(*, user: User) -> NotificationSettings:
    """The user's choices, created on first use: every event; email only where it would
    really reach them (a real mailer and an address), so a ticked box never promises mail."""
    found, _ = NotificationSettings.objects.get_or_create(
        user=user,
        defaults={
            "events": list(EventKind.values),
            "email_enabled": email_channel_get(user=user).default_on,
        },
    )
    return found


def channels_for(*, user: User, kind: str) -> list[str]:
    """The channels this user hears about this kind of event on."""
    chosen = settings_get(user=user)
    if kind not in (chosen.events or []):
        return []
    channels: list[str] = []
    if chosen.email_enabled and user.email and email_available():
        channels.append(Channel.EMAIL)
    if chosen.webhook_url:
        channels.append(Channel.WEBHOOK)
    return channels


def deliveries_record(*, event: Event) -> list[int]:
    """Record the event's deliveries (once per recipient and channel, whoever calls, however
    often). Returns the new deliveries' ids, for the queue (notifications.background.notify)."""
    created = []
    for user in event.recipients:
        message = message_scrub(event.message, user=user)
        for channel in channels_for(user=user, kind=event.kind):
            key = f"{event.key}:{user.pk}:{channel}"[:255]
            try:
                with transaction.atomic():
                    delivery = Delivery.objects.create(
                        key=key,
                        recipient=user,
                        event=event.kind,
                        channel=channel,
                        subject=message.subject,
                        text=message.text,
                        fields=message.fields,
                        # Due now: the sweep puts it back if its first job is lost.
                        next_attempt_at=timezone.now(),
                    )
            except IntegrityError:
                continue  # already recorded: by a retry, or by another worker
            created.append(delivery.pk)
    return created


def _backoff(attempts: int) -> timedelta:
    base = settings.NOTIFICATIONS_RETRY_BASE_SECONDS
    return timedelta(seconds=min(base * 2 ** max(0, attempts - 1), 6 * 3600))


@dataclass(frozen=True)
class DeliveryAttempt:
    """How a delivery stands after an attempt to send it."""

    status: str  # DeliveryStatus; "" when there is no such delivery
    retry_at: datetime | None = None  # failed, to be tried again then (the queue schedules it)


def delivery_send(*, delivery_id: int, now: datetime | None = None) -> DeliveryAttempt:
    """Send one delivery if it is pending and due and nobody else is sending it."""
    now = now or timezone.now()
    claimed = (
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .update(claimed_until=now + timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1)
    )
    delivery = Delivery.objects.select_related("recipient").filter(pk=delivery_id).first()
    if delivery is None:
        return DeliveryAttempt("")
    if not claimed:
        return DeliveryAttempt(delivery.status)
    try:
        _send(delivery)
    except Exception as exc:  # noqa: BLE001  every failure is recorded and retried
        error = secrets_redact(_failure_describe(exc, channel=delivery.channel))[:1000]
        give_up = delivery.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS or isinstance(
            exc, InputError
        )
        retry_at = None if give_up else now + _backoff(delivery.attempts)
        Delivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING,
            last_error=error,
            next_attempt_at=retry_at,
            claimed_until=None,
        )
        logger.warning(
            "Notification %s (%s by %s) attempt %s failed%s: %s",
            delivery_id,
            delivery.event,
            delivery.channel,
            delivery.attempts,
            "; giving up" if give_up else "",
            error,
        )
        return DeliveryAttempt(
            DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING, retry_at=retry_at
        )
    Delivery.objects.filter(pk=delivery_id).update(
        status=DeliveryStatus.SENT, sent_at=timezone.now(), claimed_until=None, last_error=""
    )
    return DeliveryAttempt(DeliveryStatus.SENT)


class WebhookAnswered(RuntimeError):
    """The webhook answered, but not with success (the message is ours: safe to show)."""


def _failure_describe(exc: BaseException, *, channel: str) -> str:
    """What to record and log about a failed send. A webhook's URL path is its secret (Slack's
    are), and requests' and urllib3's messages repeat the URL: for those only the exception's
    class and the operating system's or TLS's reason."""
    if channel != Channel.WEBHOOK or isinstance(exc, InputError | WebhookAnswered):
        return f"{type(exc).__name__}: {exc}"
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        found = stack.pop()
        if not isinstance(found, BaseException) or id(found) in seen:
            continue
        seen.add(id(found))
        if isinstance(found, ssl.SSLError):
            return f"{type(exc).__name__} (TLS: {found.reason or type(found).__name__})"
        if isinstance(found, OSError) and isinstance(found.errno, int):
            code = found.errno
            if code > 0:
                reason = f"{errno.errorcode.get(code, code)}: {os.strerror(code)}"
            else:  # a resolver (getaddrinfo) error: its own short text, never the name
                reason = f"resolver error {code}"
            return f"{type(exc).__name__} ({reason})"
        # requests and urllib3 keep the cause in args (MaxRetryError.reason) or the chain
        stack.extend([found.__cause__, found.__context__, getattr(found, "reason", None)])
        stack.extend(found.args)
    return type(exc).__name__


def _slack_escape(text: str) -> str:
    """Slack-compatible receivers read <!channel>, <url|label> and & entities in `text` as
    markup; an agent's words must stay words (Slack's rule: escape exactly these three)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _send(delivery: Delivery) -> None:
    user = delivery.recipient
    if delivery.channel == Channel.EMAIL:
        if not user.email:
            raise InputError("The user has no email address.")
        send_mail(
            subject=f"{settings.NOTIFICATIONS_SUBJECT_PREFIX}{delivery.subject}",
            message=delivery.text,
            from_email=None,
            recipient_list=[user.email],
        )
        return
    chosen = settings_get(user=user)
    if not chosen.webhook_url:
        raise InputError("The webhook was removed.")
    # Checked again (DNS may have changed), and sent to exactly the addresses checked.
    url, addresses = webhook_url_check(url=chosen.webhook_url)
    text = f"*{_slack_escape(delivery.subject)}*\n{_slack_escape(delivery.text)}"
    payload = {"text": text, **delivery.fields}
    status = webhook_post(url=url, addresses=addresses, payload=payload, timeout=WEBHOOK_TIMEOUT)
    if status >= 300:
        raise WebhookAnswered(f"the webhook answered HTTP {status}")


def deliveries_due_take(*, now: datetime, limit: int = 200) -> list[int]:
    """The deliveries to put back in the queue, each taken once: one whose time came (its job
    lost, or never deferred where the task backend cannot defer) and one whose send's claim ran
    out (its worker died mid-send). Returns their ids."""
    pending = Delivery.objects.filter(status=DeliveryStatus.PENDING)
    taken = []
    due = pending.filter(next_attempt_at__lte=now).order_by("next_attempt_at")
    for pk, at in due.values_list("pk", "next_attempt_at")[:limit]:
        # In the queue from now on: delivery_send takes a delivery with no retry time as due.
        if pending.filter(pk=pk, next_attempt_at=at).update(next_attempt_at=None):
            taken.append(pk)
    stale = pending.filter(claimed_until__lte=now).order_by("claimed_until")
    for pk, until in stale.values_list("pk", "claimed_until")[:limit]:
        if pending.filter(pk=pk, claimed_until=until).update(claimed_until=None):
            taken.append(pk)
    return taken


def notification_settings_save(
    *, user: User, events: list[str], email_enabled: bool, webhook_url: str | None
) -> NotificationSettings:
    """Save a user's choices. webhook_url: None keeps the saved one, "" removes it. Raises
    InputError (field "webhook_url") when the URL may not be used; nothing is saved then."""
    chosen = settings_get(user=user)
    values: dict[str, object] = {
        "events": [e for e in EventKind.values if e in events],
        "email_enabled": email_enabled,
    }
    if webhook_url is not None:
        if webhook_url.strip():
            try:
                url, _ = webhook_url_check(url=webhook_url)
            except InputError as exc:
                raise InputError(exc.message, field="webhook_url") from None
            values.update(webhook_url=url, webhook_host=urlsplit(url).hostname or "")
        else:
            values.update(webhook_url="", webhook_host="")
    for name, value in values.items():
        setattr(chosen, name, value)
    chosen.save()
    return chosen
