from django.conf import settings
from django.db import models
from django.utils import timezone


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    TASKS = "tasks", "Read + tasks"  # also submit, cancel and continue tasks


class ApiToken(models.Model):
    """A personal access token for the JSON API. Only a hash of its secret is kept: the secret is
    shown once, when it is made, and can never be read back."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The public part of the token, for the lookup; the secret after it is only hashed.
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    expires_at = models.DateTimeField(null=True, blank=True)  # None: never, chosen explicitly
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_address = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def can_write_tasks(self) -> bool:
        return self.scope == TokenScope.TASKS


class GitHubDelivery(models.Model):
    """A webhook delivery from GitHub, kept by its id so a redelivery starts nothing new, and by
    the comment GitHub confirmed it for, so a comment is acted on once under any delivery id."""

    delivery_id = models.CharField(max_length=100, unique=True)
    event = models.CharField(max_length=64)
    # The confirmed comment, set once GitHub confirms it: lower-cased owner/name, and its id.
    repository = models.CharField(max_length=255, blank=True, default="")
    comment_id = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=255, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "GitHub delivery"
        verbose_name_plural = "GitHub deliveries"
        constraints = [
            # Issue and review comments are numbered apart: the event is part of the key.
            models.UniqueConstraint(
                fields=["event", "repository", "comment_id"],
                condition=models.Q(comment_id__isnull=False),
                name="api_githubdelivery_one_per_comment",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id}"


class TaskMention(models.Model):
    """The GitHub comment a task was started from, to answer in its thread when it ends."""

    task = models.OneToOneField(
        "tasks.CodingTask", on_delete=models.CASCADE, primary_key=True, related_name="mention"
    )
    repo_url = models.CharField(max_length=2000)
    number = models.PositiveIntegerField()  # the issue or pull request
    comment_id = models.BigIntegerField()
    replied_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Mention of task {self.pk} in #{self.number}"
