"""Personal access tokens for the JSON API: made (the secret shown once), checked, revoked."""

import hashlib
import hmac
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from common.errors import InputError

from .models import ApiToken, TokenScope

logger = logging.getLogger(__name__)

TOKEN_START = "crt_"  # noqa: S105  (the public mark of our tokens, not a secret)
_PREFIX_CHARS = 12  # hex: the public lookup part
# The lifetimes a user may choose, in days; None is "never", which must be chosen explicitly.
EXPIRY_CHOICES: tuple[int | None, ...] = (7, 30, 90, 365, None)
DEFAULT_EXPIRY_DAYS = 90
NAME_MAX_CHARS = 100
# A token's last use is written at most this often (and when the address changes), so a busy
# script does not turn every read into a write.
LAST_USED_EVERY = timedelta(seconds=60)


class ApiTokenRefused(Exception):
    """The bearer token is not accepted; the message says why, never repeating it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the whole token, shown to its owner once and never stored


def _secret_hash(raw: str) -> str:
    # A token is 256 random bits: no dictionary or brute force reaches it, so a fast hash is
    # enough (a slow password hash would cost every API request its time and buy nothing).
    return hashlib.sha256(raw.encode()).hexdigest()


def _name_check(name: str) -> str:
    text = name.strip()
    if not text:
        raise InputError("Give the token a name, so you know later where it is used.", field="name")
    if len(text) > NAME_MAX_CHARS:
        raise InputError(f"The name is longer than {NAME_MAX_CHARS} characters.", field="name")
    if any(unicodedata.category(char) in ("Cc", "Cs", "Cf") for char in text):
        raise InputError("The name contains control or invisible characters.", field="name")
    return text


@transaction.atomic
def api_token_create(
    *, owner: User, name: str, scope: str, expires_in_days: int | None = DEFAULT_EXPIRY_DAYS
) -> NewToken:
    """A new token for owner. Raises InputError for a bad name, scope or lifetime."""
    clean_name = _name_check(name)
    if scope not in TokenScope.values:
        raise InputError("Choose the scope: read, or read + tasks.", field="scope")
    if expires_in_days not in EXPIRY_CHOICES:
        raise InputError("Choose one of the offered lifetimes.", field="expires_in_days")
    prefix = secrets.token_hex(_PREFIX_CHARS // 2)
    raw = f"{TOKEN_START}{prefix}_{secrets.token_urlsafe(32)}"
    expires_at = (
        None if expires_in_days is None else timezone.now() + timedelta(days=expires_in_days)
    )
    token = ApiToken.objects.create(
        owner=owner,
        name=clean_name,
        prefix=prefix,
        secret_hash=_secret_hash(raw),
        scope=scope,
        expires_at=expires_at,
    )
    logger.info("API token %s made for user %s", prefix, owner.pk)
    return NewToken(token=token, secret=raw)


def api_token_revoke(*, token: ApiToken) -> bool:
    """Revoke a token at once. False if it was revoked already."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if revoked:
        logger.info("API token %s revoked", token.prefix)
    return bool(revoked)


def _prefix_of(raw: str) -> str | None:
    end = len(TOKEN_START) + _PREFIX_CHARS
    if not raw.startswith(TOKEN_START) or raw[end : end + 1] != "_":
        return None
    return raw[len(TOKEN_START) : end]


def api_token_authenticate(*, raw: str, address: str | None) -> ApiToken:
    """The active token whose secret this is, its last use recorded. Raises ApiTokenRefused."""
    prefix = _prefix_of(raw)
    token = (
        None
        if prefix is None
        else ApiToken.objects.select_related("owner").filter(prefix=prefix).first()
    )
    if token is None or not hmac.compare_digest(token.secret_hash, _secret_hash(raw)):
        raise ApiTokenRefused("The token is not valid. Make one on the API tokens settings page.")
    if token.revoked_at is not None:
        raise ApiTokenRefused("The token was revoked.")
    if token.is_expired:
        raise ApiTokenRefused("The token has expired. Make a new one.")
    if not token.owner.is_active:
        raise ApiTokenRefused("The token's user account is disabled.")
    _last_use_record(token, address)
    return token


def _last_use_record(token: ApiToken, address: str | None) -> None:
    now = timezone.now()
    recent = token.last_used_at is not None and now - token.last_used_at < LAST_USED_EVERY
    if recent and token.last_used_address == address:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_address=address)
    token.last_used_at, token.last_used_address = now, address
