from django.conf import settings
from django.db import models

from common.fields import EncryptedJSONField, EncryptedTextField


class UserPreferences(models.Model):
    """Per-user settings, created on first use (see accounts.selectors.preferences_get)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    use_oauth = models.BooleanField(
        "use Claude OAuth",
        default=False,
        help_text="Run tasks with this user's Claude subscription tokens instead of an API key.",
    )
    api_key = EncryptedTextField("Anthropic API key", blank=True, default="")
    # Only the last four characters, kept in clear so pages can say which key is set.
    api_key_last4 = models.CharField(max_length=4, blank=True, default="")
    agent_env = EncryptedJSONField("extra agent environment", blank=True, null=True, default=None)
    when_limited = models.CharField(
        "when my subscription is limited",
        max_length=8,
        choices=[("wait", "Wait for the reset"), ("api_key", "Fall back to my API key")],
        default="wait",
    )
    # Per-user task limits; empty means the server's default (AGENT_MAX_*_TASKS_PER_USER).
    max_running_tasks = models.PositiveSmallIntegerField(
        "most tasks running at once",
        null=True,
        blank=True,
        help_text="Empty: the server's default (AGENT_MAX_RUNNING_TASKS_PER_USER).",
    )
    max_queued_tasks = models.PositiveSmallIntegerField(
        "most tasks waiting to start",
        null=True,
        blank=True,
        help_text="Empty: the server's default (AGENT_MAX_QUEUED_TASKS_PER_USER). "
        "0 with 0 running stops this user from submitting tasks.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "user preferences"
        verbose_name_plural = "user preferences"

    def __str__(self) -> str:
        return f"Preferences of {self.user}"

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_last4)
