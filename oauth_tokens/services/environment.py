"""The global credential, seeded from the CLAUDE_* environment variables on first use
(docs/claude-cli-contract.md#environment-precedence)."""

import hashlib
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from oauth_tokens.formats import (
    ParsedCredential,
    TokenFormatError,
    credential_input_parse,
)
from oauth_tokens.models import CredentialSource, OAuthCredential

from .storing import token_fields

logger = logging.getLogger("oauth_tokens.services")


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class EnvironmentTokensError(Exception):
    """CLAUDE_USE_OAUTH is on but the CLAUDE_* variables do not hold usable tokens."""


def environment_credential_get() -> OAuthCredential | None:
    """The global credential, seeded from the environment on first use.

    From then on the database row is the truth (its refresh token rotates there). Only when the
    environment holds a different token than the one seeded is the row seeded again.
    """
    if not settings.CLAUDE_USE_OAUTH:
        return None
    if not settings.CLAUDE_ACCESS_TOKEN:
        raise EnvironmentTokensError(
            "CLAUDE_USE_OAUTH=true but CLAUDE_ACCESS_TOKEN is empty. Set CLAUDE_ACCESS_TOKEN "
            "(and CLAUDE_REFRESH_TOKEN, CLAUDE_EXPIRES_AT), or turn CLAUDE_USE_OAUTH off."
        )
    fingerprint = _fingerprint(settings.CLAUDE_REFRESH_TOKEN or settings.CLAUDE_ACCESS_TOKEN)
    existing = OAuthCredential.objects.filter(
        owner__isnull=True, source=CredentialSource.ENVIRONMENT
    ).first()
    if existing is not None and existing.seed_fingerprint == fingerprint:
        return existing
    parsed = _environment_parse()
    with transaction.atomic():
        current = (
            OAuthCredential.objects.select_for_update()
            .filter(owner__isnull=True, source=CredentialSource.ENVIRONMENT)
            .first()
        )
        if current is not None and current.seed_fingerprint == fingerprint:
            return current  # another process seeded it while we parsed
        values = {**token_fields(parsed), "seed_fingerprint": fingerprint}
        if current is None:
            try:
                with transaction.atomic():
                    current = OAuthCredential.objects.create(
                        owner=None, source=CredentialSource.ENVIRONMENT, **values
                    )
            except IntegrityError:  # lost a race to seed: the winner's row is the truth
                return OAuthCredential.objects.get(
                    owner__isnull=True, source=CredentialSource.ENVIRONMENT
                )
            logger.info("Seeded the global OAuth credential from the environment")
        else:
            OAuthCredential.objects.filter(pk=current.pk).update(
                **values, updated_at=timezone.now()
            )
            current.refresh_from_db()
            logger.warning(
                "The environment holds a different OAuth refresh token than the one seeded; "
                "re-seeded the global credential from the environment"
            )
    return current


def _environment_parse() -> ParsedCredential:
    try:
        return credential_input_parse(
            raw={
                "access_token": settings.CLAUDE_ACCESS_TOKEN,
                "refresh_token": settings.CLAUDE_REFRESH_TOKEN or None,
                "expires_at": settings.CLAUDE_EXPIRES_AT or None,
            }
        )
    except TokenFormatError as exc:
        name = {
            "access_token": "CLAUDE_ACCESS_TOKEN",
            "refresh_token": "CLAUDE_REFRESH_TOKEN",
            "expires_at": "CLAUDE_EXPIRES_AT",
        }.get(exc.field or "", "the CLAUDE_* variables")
        raise EnvironmentTokensError(f"{name}: {exc.message}") from exc
