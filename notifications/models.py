from django.conf import settings
from django.db import models

from common.fields import EncryptedTextField


class EventKind(models.TextChoices):
    TASK_SUCCEEDED = "task_succeeded", "A task succeeded"
    TASK_FAILED = "task_failed", "A task failed"
    TASK_WAITING = "task_waiting", "A task is waiting for a usage limit to reset"
    TASK_RESUMED = "task_resumed", "A waiting task runs again"
    CREDENTIAL_DEAD = "credential_dead", "Tokens stopped working (sign in again)"
    CREDENTIAL_AGING = "credential_aging", "Tokens are about to expire or have been idle long"
    REFRESH_FAILING = "refresh_failing", "Tokens fail to refresh again and again"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class NotificationSettings(models.Model):
    """A user's choice of events and channels (created with defaults on first use)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    events = models.JSONField(default=list, blank=True)  # EventKind values that are on
    email_enabled = models.BooleanField(default=True)
    # A Slack-style incoming webhook URL is itself a secret: encrypted, never shown in full.
    webhook_url = EncryptedTextField(blank=True, default="")
    webhook_host = models.CharField(max_length=255, blank=True, default="")  # shown instead
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "notification settings"
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        return f"Notification settings of {self.user}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"


class Delivery(models.Model):
    """One message to one recipient on one channel. The key is unique: an event is recorded
    once however often (or by however many workers) it is announced."""

    key = models.CharField(max_length=255, unique=True)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_deliveries"
    )
    event = models.CharField(max_length=32, choices=EventKind.choices, db_index=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    subject = models.CharField(max_length=255)
    text = models.TextField()  # checked for secrets when built
    fields = models.JSONField(default=dict, blank=True)  # structured, for the webhook
    status = models.CharField(
        max_length=16,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
        db_index=True,
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.event} to {self.recipient} by {self.channel} ({self.status})"
