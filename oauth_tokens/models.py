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
    consecutive_failures = models.PositiveIntegerField(default=0)
    refresh_count = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)

    # Single flight: whoever holds an unexpired claim is the only one talking to the token
    # endpoint for this credential; the others wait for its outcome.
    refresh_claim = models.CharField(max_length=32, blank=True, default="")
    refresh_claimed_until = models.DateTimeField(null=True, blank=True)

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
