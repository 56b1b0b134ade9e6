from django.conf import settings
from django.db import models


class TaskStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"
    # Stopped by a subscription usage limit; queued again by itself after the reset.
    WAITING = "waiting", "Waiting for reset"


FINISHED_STATUSES = (
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.CANCELLED,
    TaskStatus.TIMED_OUT,
)


class WaitReason(models.TextChoices):
    """What a task waits for, so its page can say why it is not running yet."""

    NONE = "", "Nothing"
    USAGE_LIMIT = "usage_limit", "A usage limit to reset"
    ENGINE = "engine", "The container engine"


class PullRequestState(models.TextChoices):
    NONE = "", "None"
    PENDING = "pending", "Being created"
    OPENED = "opened", "Opened"
    PUSHED = "pushed", "Pushed to the pull request's branch"
    FAILED = "failed", "Refused"


class AgentKind(models.TextChoices):
    CLAUDE = "claude", "Claude Code"
    # Room for more agents (e.g. codex): each needs an image and an output parser.


class CodingTask(models.Model):
    """One prompt run by an agent against one repository, in one container."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coding_tasks"
    )
    repo_url = models.CharField("repository URL", max_length=2000)
    branch = models.CharField(max_length=255, blank=True, default="")
    prompt = models.TextField()
    agent = models.CharField(max_length=16, choices=AgentKind.choices, default=AgentKind.CLAUDE)
    status = models.CharField(
        max_length=16, choices=TaskStatus.choices, default=TaskStatus.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)

    # How it authenticated (never the credential itself).
    auth_method = models.CharField(max_length=16, blank=True, default="")
    auth_source = models.CharField(max_length=16, blank=True, default="")
    auth_refreshed = models.BooleanField(default=False)
    auth_fallback = models.BooleanField(default=False)
    auth_note = models.TextField(blank=True, default="")

    # Where it ran: the Docker engine's id, so recovery on one host never judges another's.
    engine_id = models.CharField(max_length=128, blank=True, default="")
    runner = models.CharField(max_length=255, blank=True, default="")  # host:pid of the worker
    container_id = models.CharField(max_length=128, blank=True, default="")
    exit_code = models.IntegerField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # The agent's own result object (stream-json "result" line).
    result_text = models.TextField(blank=True, default="")
    result_is_error = models.BooleanField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    num_turns = models.IntegerField(null=True, blank=True)
    session_id = models.CharField(max_length=128, blank=True, default="")

    # What the task's gateway saw of the model API (tasks.run.runner records gateway.GatewayUsage).
    api_requests = models.IntegerField(null=True, blank=True)
    input_tokens = models.BigIntegerField(null=True, blank=True)
    output_tokens = models.BigIntegerField(null=True, blank=True)
    cache_creation_input_tokens = models.BigIntegerField(null=True, blank=True)
    cache_read_input_tokens = models.BigIntegerField(null=True, blank=True)
    api_status_429 = models.IntegerField(null=True, blank=True)
    api_status_529 = models.IntegerField(null=True, blank=True)
    ratelimit_headers = models.JSONField(default=dict, blank=True)  # last anthropic-ratelimit-*

    diff = models.TextField(blank=True, default="")
    diff_truncated = models.BooleanField(default=False)
    changed_files = models.JSONField(default=list, blank=True)
    error_message = models.TextField(blank=True, default="")
    log = models.TextField(blank=True, default="")
    log_truncated = models.BooleanField(default=False)

    # What another worker needs to take over a running task whose worker died (tasks.recovery):
    # a new gateway on the same socket (its folder is still mounted into the container), with
    # the same placeholder and credential (auth_credential_id below). The placeholder is
    # worthless outside that socket and is cleared when the task ends; never a real token here.
    gateway_dir = models.CharField(max_length=512, blank=True, default="")
    gateway_placeholder = models.CharField(max_length=128, blank=True, default="")

    # When it is due in the queue: a new or resumed task now, a waiting one at its reset (plus
    # jitter), one waiting for the engine at its next try. Cleared when a worker claims it, or
    # when the sweep hands it to the queue (tasks.queue); a job lost before then is put back.
    requeue_at = models.DateTimeField(null=True, blank=True, db_index=True)
    waiting_since = models.DateTimeField(null=True, blank=True)  # start of the current wait
    wait_reason = models.CharField(
        max_length=16, choices=WaitReason.choices, blank=True, default=WaitReason.NONE
    )

    # Usage limits and rejected credentials (tasks.waits.limits); never a secret.
    limit_verdict = models.CharField(max_length=16, blank=True, default="")  # LimitVerdict
    limit_window = models.CharField(max_length=32, blank=True, default="")
    limit_detail = models.CharField(max_length=255, blank=True, default="")
    limited_until = models.DateTimeField(null=True, blank=True)  # the reset, as announced
    limit_waits = models.PositiveIntegerField(default=0)  # times it waited for a reset
    limit_waited_seconds = models.PositiveIntegerField(default=0)  # earlier waits, summed
    force_api_key = models.BooleanField(default=False)  # "run now with my API key"
    auth_rejected = models.BooleanField(default=False)  # the API refused the credential
    # Which OAuth credential ran it (none for an API key); a plain id, so history outlives it.
    # A taken-over task's new gateway uses it too.
    auth_credential_id = models.IntegerField(null=True, blank=True)
    # The agent's own time, from the CLI's result (tokens: the gateway's counts above).
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    # Pull requests (hosting/). The worker clones, the container commits and returns a git
    # bundle of its commits, the worker pushes it to pr_branch and opens the pull request.
    open_pull_request = models.BooleanField("open a pull request when done", default=False)
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="continuations",
        help_text="The task this one continues: it starts from that task's branch.",
    )
    base_branch = models.CharField(max_length=255, blank=True, default="")  # the PR's base
    start_commit = models.CharField(max_length=64, blank=True, default="")  # what was cloned
    result_bundle = models.BinaryField(null=True, blank=True, editable=False)
    pr_branch = models.CharField(max_length=255, blank=True, default="")  # pushed to
    pr_commit = models.CharField(max_length=64, blank=True, default="")  # pushed commit
    pr_number = models.IntegerField(null=True, blank=True)
    pr_url = models.CharField(max_length=2000, blank=True, default="")
    pr_state = models.CharField(max_length=16, blank=True, default="")  # see PullRequestState
    pr_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"Task {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def waiting_for_engine(self) -> bool:
        return self.status == TaskStatus.QUEUED and self.wait_reason == WaitReason.ENGINE

    @property
    def can_cancel(self) -> bool:
        return (
            self.status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING)
            and not self.cancel_requested
        )

    @property
    def credential_label(self) -> str:
        """Which credential ran it, in words: user OAuth, global OAuth, user key, server key."""
        if not self.auth_method:
            return ""
        user = self.auth_source == "user"
        if self.auth_method == "oauth":
            label = "user OAuth" if user else "global OAuth"
        else:
            label = "user API key" if user else "server API key"
        return f"{label} (fallback)" if self.auth_fallback else label
