"""Environments: what a task's container holds before the agent starts (an allowed image, a
setup script run once on a fresh checkout, a maintenance script run on a cached one, variables,
setup-only secrets, the network each phase may reach), the repositories each applies to, and the
snapshots setup left behind (the cache). TaskEnvironment records which one a task ran with."""

from typing import Any

from django.conf import settings
from django.db import models

from common.fields import EncryptedJSONField


class EgressLevel(models.TextChoices):
    NONE = "none", "No network"
    REGISTRIES = "registries", "Package registries (AGENT_PACKAGE_REGISTRIES)"
    AGENTS = "agents", "The server's allow list for agents (AGENT_EGRESS_ALLOW)"
    CUSTOM = "custom", "A custom allow list"


class Environment(models.Model):
    """Owned by its maker; an admin's environment may be shared with everyone. Any edit bumps
    ``version``, so a cached snapshot of an older version is never used again."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="environments"
    )
    shared = models.BooleanField(
        default=False, help_text="Usable by every user (only an admin may share one)."
    )
    name = models.CharField(max_length=100)
    image = models.CharField(max_length=255)
    setup_script = models.TextField(blank=True, default="")
    maintenance_script = models.TextField(blank=True, default="")
    variables = models.JSONField(default=dict, blank=True)  # non-secret: shown and logged
    # Given to the setup phase only; never shown back, never to the agent.
    setup_secrets = EncryptedJSONField(null=True, blank=True)
    setup_egress = models.CharField(
        max_length=16, choices=EgressLevel.choices, default=EgressLevel.REGISTRIES
    )
    setup_allow = models.JSONField(default=list, blank=True)  # hosts, when custom
    agent_egress = models.CharField(
        max_length=16, choices=EgressLevel.choices, default=EgressLevel.AGENTS
    )
    agent_allow = models.JSONField(default=list, blank=True)
    repo_patterns = models.JSONField(default=list, blank=True)  # shell-style URL patterns
    devcontainer = models.BooleanField(
        default=False,
        help_text="Also run the repository's .devcontainer/devcontainer.json lifecycle commands "
        "as setup.",
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="environment_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_setup_secrets(self) -> bool:
        return bool(self.setup_secrets)


class EnvironmentSnapshot(models.Model):
    """What one successful setup left in the container's home (the checkout and the caches
    beside it), as a tar file on the worker. Written by the setup phase only; a task's agent
    works on a copy."""

    key = models.CharField(max_length=64, unique=True)
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="snapshots")
    # Whose it is: the task's owner, or nobody for an admin's shared environment without secrets.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True
    )
    version = models.PositiveIntegerField()
    image = models.CharField(max_length=255)
    repo_url = models.CharField(max_length=2000)
    base_branch = models.CharField(max_length=255)
    commit = models.CharField(max_length=64)  # what setup ran on
    path = models.CharField(max_length=1000)
    size_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"Snapshot of {self.environment} v{self.version} for {self.repo_url}"


class CacheUse(models.TextChoices):
    NONE = "", "Not run yet"
    MISS = "miss", "Cache miss: setup ran"
    HIT = "hit", "Cache hit: maintenance ran on the snapshot"


class TaskEnvironment(models.Model):
    """Which environment a task runs with (chosen when it is made) and what its setup phase did;
    only a task with an environment has one."""

    task = models.OneToOneField(
        "tasks.CodingTask",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="environment_run",
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.SET_NULL, null=True, blank=True, related_name="task_runs"
    )
    name = models.CharField(max_length=100)  # as it was: the environment may go
    version = models.PositiveIntegerField(null=True, blank=True)  # the version that ran
    cache = models.CharField(max_length=8, choices=CacheUse.choices, blank=True, default="")
    setup_seconds = models.FloatField(null=True, blank=True)
    setup_exit_code = models.IntegerField(null=True, blank=True)
    setup_log = models.TextField(blank=True, default="")
    setup_log_truncated = models.BooleanField(default=False)
    snapshot_bytes = models.BigIntegerField(null=True, blank=True)
    # One more at each write of the setup phase (task_environment_record): an open task page's
    # poll compares it, as the setup log is too long to compare on every poll.
    revision = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Environment of task {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.environment is not None and not self.name:
            self.name = self.environment.name
        super().save(*args, **kwargs)
