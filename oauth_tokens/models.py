from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.fields import EncryptedTextField

from .formats import CredentialKind

# The parser owns the kinds (it decides them); the column only adds labels for people.
CREDENTIAL_KIND_CHOICES = [
    (CredentialKind.REFRESHABLE.value, "Refreshable (access + refresh token)"),
    (CredentialKind.SETUP_TOKEN.value, "Long-lived token (claude setup-token)"),
]


class CredentialSource(models.TextChoices):
    USER = "user", "Entered by the user"
    ENVIRONMENT = "environment", "Server environment"
    IMPORTED = "imported", "Imported from a Claude installation"


class AuthMethod(models.TextChoices):
    """How a task authenticates (oauth_tokens.services.auth_method_resolve chooses)."""

    OAUTH = "oauth", "Claude OAuth"
    API_KEY = "api_key", "API key"


class AuthSource(models.TextChoices):
    """Whose credential a task runs on: its owner's, or the server's (the environment)."""

    USER = "user", "user"
    ENVIRONMENT = "environment", "environment"


class CredentialStatus(models.TextChoices):
    VALID = "valid", "Valid"
    EXPIRING = "expiring", "Expiring soon"
    EXPIRED = "expired", "Expired"
    REFRESH_FAILED = "refresh_failed", "Refresh failed"
    INVALID = "invalid", "Invalid"


class OAuthCredential(models.Model):
    """A Claude OAuth credential: one per user, plus at most one global one (owner empty).

    Tokens are encrypted; everything an operator sorts or filters on is a plain column.
    """

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="oauth_credential",
        help_text="Empty for the global credential from the server environment.",
    )
    kind = models.CharField(max_length=16, choices=CREDENTIAL_KIND_CHOICES)
    source = models.CharField(max_length=16, choices=CredentialSource.choices)
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField(blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    scopes = models.JSONField(default=list, blank=True)
    subscription_type = models.CharField(max_length=32, blank=True, default="")
    rate_limit_tier = models.CharField(max_length=64, blank=True, default="")
    # sha256 of the environment token this global row was seeded from: a changed environment
    # token is noticed without keeping it in clear (the row's own token rotates away from it).
    seed_fingerprint = models.CharField(max_length=64, blank=True, default="")

    # Health, kept as plain columns for the admin.
    status = models.CharField(
        max_length=16,
        choices=CredentialStatus.choices,
        default=CredentialStatus.VALID,
        db_index=True,
    )
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_refresh_attempt_at = models.DateTimeField(null=True, blank=True)
    last_refresh_error = models.TextField(blank=True, default="")
    # RefreshError.code of that error ("" when none): lets the admin tell an edge block of the
    # token endpoint (token_client.EDGE_BLOCKED) from a dead token without reading the words.
    last_refresh_error_code = models.CharField(max_length=32, blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    refresh_count = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # When the model API last accepted these tokens, as a task's gateway saw it (never what an
    # agent claims). Null: not used since they were saved, so not known to work.
    last_accepted_at = models.DateTimeField("last accepted by the API", null=True, blank=True)
    # When a task's gateway saw the API refuse the access token for good (after its forced
    # refresh, or with no way to renew it): that token is dead whatever expires_at says. Null
    # again once new tokens are saved or renewed.
    refused_at = models.DateTimeField("refused by the API", null=True, blank=True)

    # Single flight: whoever holds an unexpired claim is the only one talking to the token
    # endpoint for this credential; the others wait for its outcome.
    refresh_claim = models.CharField(max_length=32, blank=True, default="")
    refresh_claimed_until = models.DateTimeField(null=True, blank=True)

    # When the user (or the environment) last saved these tokens: a setup token lasts about a
    # year from then (notifications warn before). Null on rows saved before this column.
    saved_at = models.DateTimeField(null=True, blank=True)

    # Usage limits of the subscription behind it, as the last task saw them (tasks.waits.limits).
    limited_until = models.DateTimeField(null=True, blank=True)  # rejected until this moment
    limit_status = models.CharField(max_length=16, blank=True, default="")  # rejected/warning
    limit_window = models.CharField(max_length=32, blank=True, default="")
    limit_utilization = models.FloatField(null=True, blank=True)
    limit_seen_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "OAuth credential"
        constraints = [
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(owner__isnull=True),
                name="oauth_one_global_credential_per_source",
            ),
        ]

    def __str__(self) -> str:
        who = self.owner.get_username() if self.owner_id else "global"  # type: ignore[union-attr]
        return f"{who} ({self.get_kind_display()})"

    @property
    def is_refreshable(self) -> bool:
        return self.kind == CredentialKind.REFRESHABLE and bool(self.refresh_token)


class CredentialKindUsed(models.TextChoices):
    """Which credential, in the words of the audit log and the usage pages."""

    USER_OAUTH = "user_oauth", "User OAuth"
    GLOBAL_OAUTH = "global_oauth", "Global OAuth"
    USER_API_KEY = "user_api_key", "User API key"
    SERVER_API_KEY = "server_api_key", "Server API key"


class AuditAction(models.TextChoices):
    USED = "used", "Used by a task"
    REFRESHED = "refreshed", "Refreshed"
    REFRESH_FAILED = "refresh_failed", "Refresh failed"
    REJECTED = "rejected", "Rejected by the API"
    LIMITED = "limited", "Usage limit reached"
    STORED = "stored", "Saved"
    REMOVED = "removed", "Removed"
    MARKED_INVALID = "marked_invalid", "Marked invalid"


class CredentialAuditEvent(models.Model):
    """One use or change of a credential. Append-only: written once, never changed or deleted
    through the app or the admin. Never holds a secret (detail is redacted before saving)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Whose credential, or whose task used a shared one; kept as text too, so history outlives
    # the account.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True, default="")
    credential_kind = models.CharField(max_length=16, choices=CredentialKindUsed.choices)
    credential_id = models.IntegerField(null=True, blank=True)  # OAuth credentials only
    action = models.CharField(max_length=16, choices=AuditAction.choices, db_index=True)
    task_id = models.IntegerField(null=True, blank=True, db_index=True)
    outcome = models.CharField(max_length=64, blank=True, default="")
    detail = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "credential audit event"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.credential_kind}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("Audit events are append-only.")
