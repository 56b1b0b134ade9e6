"""What a notification says. Built from plain facts (ids, statuses, times, reasons the apps
already redacted), scrubbed once more: no message ever holds a token, a key or an environment
value, neither the patterns secrets_redact knows nor the recipient's own saved values."""

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User

from accounts.selectors import preferences_get
from common.logging import secrets_redact
from oauth_tokens.models import OAuthCredential

REDACTED = "[redacted]"


@dataclass(frozen=True)
class Message:
    subject: str
    text: str  # plain text; the webhook's Slack-compatible `text`
    fields: dict[str, Any] = field(default_factory=dict)  # structured, for the webhook


def site_url(path: str) -> str:
    """An absolute link, or "" when NOTIFICATIONS_SITE_URL is not set (no half links)."""
    base = settings.NOTIFICATIONS_SITE_URL.rstrip("/")
    return f"{base}{path}" if base and path else ""


def user_secret_values(*, user: User) -> list[str]:
    """The recipient's own saved secrets: their tokens, API key and extra environment values."""
    values: list[str] = []
    credential = OAuthCredential.objects.filter(owner=user).first()
    if credential is not None:
        values += [credential.access_token, credential.refresh_token]
    preferences = preferences_get(user=user)
    values.append(preferences.api_key)
    values += [str(v) for v in (preferences.agent_env or {}).values()]
    return [v for v in values if v and len(v) >= 6]


def scrub(text: str, *, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return secrets_redact(text)


def message_scrub(message: Message, *, user: User) -> Message:
    secrets = user_secret_values(user=user)

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value, secrets=secrets)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return Message(
        subject=clean(message.subject)[:255], text=clean(message.text), fields=clean(message.fields)
    )
