from django.conf import settings
from django.db import models

from common.fields import EncryptedTextField


class GitHubConnection(models.Model):
    """A user's GitHub token (fine-grained, Contents and Pull requests: write), encrypted at rest.

    Only what GitHub said about it when it was saved is kept in clear: who it belongs to and
    when it expires. The token itself is never shown back.
    """

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="github_connection"
    )
    token = EncryptedTextField("GitHub token")
    token_last4 = models.CharField(max_length=4, blank=True, default="")
    login = models.CharField("GitHub user", max_length=255, blank=True, default="")
    # GitHub's numeric user id never changes, unlike a login, which a stranger may claim once it
    # is renamed. None: saved before it was kept; asked for when a mention needs it.
    github_id = models.BigIntegerField("GitHub user id", null=True, blank=True, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    api_url = models.CharField("checked against", max_length=500, blank=True, default="")
    checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "GitHub connection"

    def __str__(self) -> str:
        return f"GitHub connection of {self.owner} ({self.login or 'unchecked'})"


class GitHubCheckQuota(models.Model):
    """The live checks of GitHub a user started in the current minute, and until when one is
    still waiting for GitHub: the settings page's check is throttled per user."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="github_check_quota"
    )
    window_started_at = models.DateTimeField()
    used = models.PositiveIntegerField(default=0)
    busy_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "GitHub live-check quota"

    def __str__(self) -> str:
        return f"GitHub live checks of {self.owner}: {self.used} since {self.window_started_at}"
