from typing import Any

from django.conf import settings
from django.db import models

from common.fields import EncryptedTextField
from oauth_tokens.models import AuthMethod, AuthSource


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


# A message that came after the agent's run ended becomes a follow-up by itself when the task
# ends so; a cancelled task keeps it (the cancel is the owner's later word).
LATE_FOLLOW_UP_STATUSES = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.TIMED_OUT)


class WaitReason(models.TextChoices):
    """What a task waits for, so its page can say why it is not running yet."""

    NONE = "", "Nothing"
    USAGE_LIMIT = "usage_limit", "A usage limit to reset"
    ENGINE = "engine", "The container engine"


class LimitVerdict(models.TextChoices):
    """What a run said about usage limits and its credential (tasks.waits.limits reads it)."""

    NONE = "", "None"
    WARNING = "warning", "Close to a limit"  # allowed_warning
    LIMITED = "limited", "Stopped by a usage limit"
    AUTH_FAILED = "auth_failed", "Credential rejected (401/403)"


class PullRequestState(models.TextChoices):
    NONE = "", "None"
    PENDING = "pending", "Being created"
    OPENED = "opened", "Opened"
    PUSHED = "pushed", "Pushed to the pull request's branch"
    FAILED = "failed", "Refused"


class AgentKind(models.TextChoices):
    CLAUDE = "claude", "Claude Code"
    # Room for more agents (e.g. codex): each needs an image and an output parser.


def live_state_token(
    *, status: str, cancel_requested: bool, wait_reason: str, messages: str = "", facts: str = ""
) -> str:
    """What a task page's live part shows besides the log, as a short token: when it differs
    from the one the page was drawn with, the page draws the part again. ``messages``: the
    messages' mark (tasks.selectors.messages_mark), "" while there are none; ``facts``: the
    mark of the rest it shows (tasks.selectors.live_facts_mark), "" while none is set."""
    token = f"{status}.{int(cancel_requested)}.{wait_reason}"
    if messages or facts:
        token = f"{token}.{messages}"
    return f"{token}.{facts}" if facts else token


class CodingTask(models.Model):
    """One prompt run by an agent against one repository, in one container: what was asked,
    where it stands and what came of it. What a run used, what limits did to it, its pull
    request and the plumbing a worker needs to take it over live beside it, one row each
    (TaskUsage, TaskLimit, TaskPullRequest, TaskRuntime, TaskConversation, TaskLogProgress),
    made with the task."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coding_tasks"
    )
    repo_url = models.CharField("repository URL", max_length=2000)
    branch = models.CharField(max_length=255, blank=True, default="")
    prompt = models.TextField()
    agent = models.CharField(max_length=16, choices=AgentKind.choices, default=AgentKind.CLAUDE)
    open_pull_request = models.BooleanField("open a pull request when done", default=False)
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="continuations",
        help_text="The task this one continues: it starts from that task's branch.",
    )
    status = models.CharField(
        max_length=16, choices=TaskStatus.choices, default=TaskStatus.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)
    error_message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # When it is due in the queue: a new or resumed task now, a waiting one at its reset (plus
    # jitter), one waiting for the engine at its next try. Cleared when a worker claims it, or
    # when the sweep hands it to the queue (tasks.queue); a job lost before then is put back.
    requeue_at = models.DateTimeField(null=True, blank=True, db_index=True)
    waiting_since = models.DateTimeField(null=True, blank=True)  # start of the current wait
    wait_reason = models.CharField(
        max_length=16, choices=WaitReason.choices, blank=True, default=WaitReason.NONE
    )

    # Who runs it (host:pid), claimed with the status, and on which Docker engine: recovery on
    # one host never judges another's.
    runner = models.CharField(max_length=255, blank=True, default="")
    engine_id = models.CharField(max_length=128, blank=True, default="")

    # How it authenticated (never the credential itself).
    auth_method = models.CharField(
        max_length=16, choices=AuthMethod.choices, blank=True, default=""
    )
    auth_source = models.CharField(
        max_length=16, choices=AuthSource.choices, blank=True, default=""
    )
    auth_refreshed = models.BooleanField(default=False)
    auth_fallback = models.BooleanField(default=False)
    auth_note = models.TextField(blank=True, default="")
    force_api_key = models.BooleanField(default=False)  # "run now with my API key"

    # What came of it: the agent's own result object (stream-json "result" line), its changes
    # and its log.
    exit_code = models.IntegerField(null=True, blank=True)
    result_text = models.TextField(blank=True, default="")
    result_is_error = models.BooleanField(null=True, blank=True)
    session_id = models.CharField(max_length=128, blank=True, default="")
    diff = models.TextField(blank=True, default="")
    diff_truncated = models.BooleanField(default=False)
    changed_files = models.JSONField(default=list, blank=True)
    log = models.TextField(blank=True, default="")
    log_truncated = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"Task {self.pk} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:  # every reader may follow task.usage (and the others) without asking
            for model in (
                TaskUsage,
                TaskLimit,
                TaskPullRequest,
                TaskRuntime,
                TaskConversation,
                TaskLogProgress,
            ):
                model.objects.create(task=self)

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
        user = self.auth_source == AuthSource.USER
        if self.auth_method == AuthMethod.OAUTH:
            label = "user OAuth" if user else "global OAuth"
        else:
            label = "user API key" if user else "server API key"
        return f"{label} (fallback)" if self.auth_fallback else label


class TaskUsage(models.Model):
    """What a run used: the model API as the task's gateway counted it (gateway.GatewayUsage),
    and the agent's own account of cost, turns and time (its result). The Usage page sums these."""

    task = models.OneToOneField(
        CodingTask, on_delete=models.CASCADE, primary_key=True, related_name="usage"
    )
    requests = models.IntegerField(null=True, blank=True)
    input_tokens = models.BigIntegerField(null=True, blank=True)
    output_tokens = models.BigIntegerField(null=True, blank=True)
    cache_creation_input_tokens = models.BigIntegerField(null=True, blank=True)
    cache_read_input_tokens = models.BigIntegerField(null=True, blank=True)
    status_401 = models.IntegerField(null=True, blank=True)
    status_403 = models.IntegerField(null=True, blank=True)
    status_429 = models.IntegerField(null=True, blank=True)
    status_529 = models.IntegerField(null=True, blank=True)
    ratelimit_headers = models.JSONField(default=dict, blank=True)  # last anthropic-ratelimit-*
    # What the gateway saw of the credential (the only witness trusted with it): tokens it
    # renewed after a 401, whether the API refused the credential for good, when the API last
    # accepted it, and the subscription's limit as the API's unified headers gave it.
    auth_refreshed_after_401 = models.IntegerField(null=True, blank=True)
    auth_refused = models.BooleanField(default=False)
    accepted_at = models.DateTimeField(null=True, blank=True)
    rate_limit_status = models.CharField(max_length=16, blank=True, default="")
    rate_limit_rejected = models.BooleanField(default=False)
    rate_limit_reset = models.DateTimeField(null=True, blank=True)  # capped
    rate_limit_claim = models.CharField(max_length=32, blank=True, default="")
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    num_turns = models.IntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "task usage"

    def __str__(self) -> str:
        return f"Usage of task {self.pk}"


class TaskLimit(models.Model):
    """What usage limits and a rejected credential did to a task (tasks.waits); never a secret."""

    task = models.OneToOneField(
        CodingTask, on_delete=models.CASCADE, primary_key=True, related_name="limit"
    )
    verdict = models.CharField(
        max_length=16, choices=LimitVerdict.choices, blank=True, default=LimitVerdict.NONE
    )
    window = models.CharField(max_length=32, blank=True, default="")
    detail = models.CharField(max_length=255, blank=True, default="")
    limited_until = models.DateTimeField(null=True, blank=True)  # the reset, as announced
    waits = models.PositiveIntegerField(default=0)  # times it waited for a reset
    waited_seconds = models.PositiveIntegerField(default=0)  # earlier waits, summed
    auth_rejected = models.BooleanField(default=False)  # the API refused the credential
    # The limit or refusal came only from the agent's output: the gateway did not see it, so it
    # shaped this task alone and the credential was left as it was.
    claim_unseen = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"Limits of task {self.pk}"


class TaskPullRequest(models.Model):
    """A task's pull request (hosting/): the worker clones at start_commit, the container
    commits and returns a git bundle of its commits, the worker pushes it to `branch` and opens
    the pull request into base_branch."""

    task = models.OneToOneField(
        CodingTask, on_delete=models.CASCADE, primary_key=True, related_name="pull_request"
    )
    base_branch = models.CharField(max_length=255, blank=True, default="")
    start_commit = models.CharField(max_length=64, blank=True, default="")  # what was cloned
    bundle = models.BinaryField(null=True, blank=True, editable=False)  # the agent's commits
    state = models.CharField(
        max_length=16, choices=PullRequestState.choices, blank=True, default=PullRequestState.NONE
    )
    branch = models.CharField(max_length=255, blank=True, default="")  # pushed to
    commit = models.CharField(max_length=64, blank=True, default="")  # pushed commit
    number = models.IntegerField(null=True, blank=True)
    url = models.CharField(max_length=2000, blank=True, default="")
    error = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"Pull request of task {self.pk}"

    @property
    def is_pending(self) -> bool:
        return self.state == PullRequestState.PENDING

    @property
    def is_pushed(self) -> bool:
        return self.state == PullRequestState.PUSHED

    @property
    def is_failed(self) -> bool:
        return self.state == PullRequestState.FAILED


class TaskRuntime(models.Model):
    """What another worker needs to take over a running task whose worker died (tasks.recovery):
    its container, and a new gateway on the same socket (its folder is still mounted into the
    container) with the same placeholder and credential. The placeholder is worthless outside
    that socket and is cleared when the task ends; never a real token here."""

    task = models.OneToOneField(
        CodingTask, on_delete=models.CASCADE, primary_key=True, related_name="runtime"
    )
    container_id = models.CharField(max_length=128, blank=True, default="")
    gateway_dir = models.CharField(max_length=512, blank=True, default="")
    gateway_placeholder = models.CharField(max_length=128, blank=True, default="")
    # Which OAuth credential runs it (none for an API key); a plain id, so history outlives it.
    credential_id = models.IntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Runtime of task {self.pk}"


class TranscriptState(models.TextChoices):
    """What became of the session transcript a run handed back."""

    NONE = "", "Not run yet"
    KEPT = "kept", "Kept"
    TOO_LARGE = "too_large", "Too large to keep"
    MISSING = "missing", "Not handed back"
    REFUSED = "refused", "Not a transcript"


class CarriedOver(models.TextChoices):
    """How a follow-up got the conversation before it."""

    NONE = "", "Not a follow-up"
    TRANSCRIPT = "transcript", "The earlier session, resumed"
    SUMMARY = "summary", "The earlier prompts and answers, summarised in its prompt"


class TaskConversation(models.Model):
    """The agent's session after a run: its id and the CLI's transcript, kept encrypted (it
    holds repository content and tool output) to resume in the next task of the chain. The
    transcript was written inside the container, so it is data from the agent: bounded, checked
    line by line as JSON, never interpreted here."""

    task = models.OneToOneField(
        CodingTask, on_delete=models.CASCADE, primary_key=True, related_name="conversation"
    )
    session_id = models.CharField(max_length=64, blank=True, default="")
    transcript = EncryptedTextField(blank=True, default="", editable=False)
    transcript_bytes = models.PositiveIntegerField(null=True, blank=True)
    transcript_state = models.CharField(
        max_length=16, choices=TranscriptState.choices, blank=True, default=TranscriptState.NONE
    )
    transcript_note = models.TextField(blank=True, default="")  # why not kept
    carried = models.CharField(
        max_length=16, choices=CarriedOver.choices, blank=True, default=CarriedOver.NONE
    )
    carried_note = models.TextField(blank=True, default="")  # what the page says about it
    # The task's gateway found nothing left to deliver: later messages become follow-ups.
    messages_closed = models.BooleanField(default=False)
    # "Run again": the failed or cancelled task this one repeats (same prompt and inputs).
    retry_of = models.ForeignKey(
        CodingTask,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retries",
    )

    def __str__(self) -> str:
        return f"Conversation of task {self.pk}"


class TaskMessage(models.Model):
    """A message from the owner to a task's running agent, delivered by the task's gateway in
    order of seq (agent/README.md, "Messages while running"). One sent after the agent had
    answered everything (`late`) is kept for the follow-up the task's end makes of it
    (tasks.follow_ups)."""

    task = models.ForeignKey(CodingTask, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)  # the container confirmed it
    # Sent once the run's message channel had closed: never handed to that run's agent.
    late = models.BooleanField(default=False)
    # The follow-up it went into, and when: the time stays if that task is deleted, so a late
    # message never starts a second one.
    follow_up = models.ForeignKey(
        CodingTask,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="from_messages",
    )
    followed_up_at = models.DateTimeField(null=True, blank=True)
    not_delivered = models.TextField(blank=True, default="")  # why no follow-up could be made

    class Meta:
        ordering = ["task", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["task", "seq"], name="task_message_seq_unique")
        ]
        indexes = [
            # The sweep's look for late messages that did not become a follow-up yet.
            models.Index(
                fields=["task"],
                condition=models.Q(late=True, followed_up_at__isnull=True),
                name="task_message_late_pending",
            )
        ]

    def __str__(self) -> str:
        return f"Message {self.seq} of task {self.task_id}"


class TaskLogProgress(models.Model):
    """How many characters the task's log has been given in all, over every run. The task row
    keeps only the log's tail, so this count, never its length, tells a page's poll whether the
    log moved on and where the part it has not shown yet starts."""

    task = models.OneToOneField(
        CodingTask, on_delete=models.CASCADE, primary_key=True, related_name="log_progress"
    )
    chars_written = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Log progress of task {self.pk}"
