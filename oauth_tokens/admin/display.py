"""How the admin shows a credential's health: a status badge and an expiry in words."""

from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.text import Truncator

from common.humanize import expiry_words

from ..models import CredentialStatus, OAuthCredential
from ..selectors import credential_status_compute
from ..services import refresh_buffer
from ..token_client import redact

ERROR_CHARS = 80


def now_and_buffer() -> tuple[datetime, timedelta]:
    return timezone.now(), refresh_buffer()


def status_badge_html(status: str) -> str:
    # Classes, not inline styles, so a strict Content-Security-Policy keeps them.
    label = CredentialStatus(status).label if status in CredentialStatus.values else status
    return format_html('<span class="token-status token-status-{}">{}</span>', status, label)


def expiry_html(expires_at: datetime | None, now: datetime) -> str:
    """ "in 3 hours, 4 minutes" with the exact local time under it."""
    if expires_at is None:
        return "never"
    words = expiry_words(expires_at=expires_at, now=now, exact=None)
    local = timezone.localtime(expires_at)
    return format_html(
        '{}<br><time datetime="{}" class="quiet token-expiry-exact">{}</time>',
        words,
        expires_at.isoformat(),
        date_format(local, "Y-m-d H:i:s T"),
    )


def owner_text(credential: OAuthCredential) -> str:
    return credential.owner.get_username() if credential.owner_id else "global"  # type: ignore[union-attr]


def credential_status_badge(credential: OAuthCredential) -> str:
    """The badge of the status that holds now (annotated by the list's query, else computed)."""
    status = getattr(credential, "current_status", None)
    if status is None:
        now, buffer = now_and_buffer()
        status = credential_status_compute(credential=credential, now=now, buffer=buffer)
    return status_badge_html(status)


def last_error_html(credential: OAuthCredential) -> str:
    """The last refresh error, redacted and cut short, the whole of it in the tooltip."""
    if not credential.last_refresh_error:
        return "-"
    text = redact(credential.last_refresh_error)
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(ERROR_CHARS))
