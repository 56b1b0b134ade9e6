"""Reads for the notifications pages: whether email can reach a user at all."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User


def _email_backend() -> str:
    return str((settings.MAILERS.get("default") or {}).get("BACKEND", ""))


def email_available() -> bool:
    """Email is set up on this server (EMAIL_URL, or a test's own mailer)."""
    backend = _email_backend()
    return bool(backend) and not backend.endswith("dummy.EmailBackend")


def email_printed_only() -> bool:
    """EMAIL_URL=consolemail://: messages go to the server's log, not to anyone's inbox."""
    return _email_backend().endswith("console.EmailBackend")


@dataclass(frozen=True)
class EmailChannel:
    """What the notifications page shows next to "Email me"."""

    usable: bool  # the box may be ticked: this server sends email and the user has an address
    default_on: bool  # ticked for someone who has not chosen yet
    address: str
    note: str  # why email is off, or where it really goes; "" when it simply works
    server_off: bool  # the reason is the server (no EMAIL_URL), not the account


def email_channel_get(*, user: User) -> EmailChannel:
    address = user.email or ""
    if not email_available():
        note = "Email is not set up on this server (the administrator sets EMAIL_URL)."
        return EmailChannel(False, False, address, note, server_off=True)
    if not address:
        note = "Your account has no email address: ask an administrator to add one."
        return EmailChannel(False, False, address, note, server_off=False)
    if email_printed_only():
        note = (
            "This server prints email in its log instead of sending it "
            "(EMAIL_URL=consolemail://), so nothing reaches your inbox."
        )
        return EmailChannel(True, False, address, note, server_off=True)
    return EmailChannel(True, True, address, "", server_off=False)
