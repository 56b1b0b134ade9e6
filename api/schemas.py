"""What the API takes and returns (the OpenAPI schema is made from these)."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from ninja import Field, Schema
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema


def _no_surrogates(text: str) -> str:
    # JSON escapes can carry a lone surrogate, which no database or git can store; form posts
    # cannot, so this check lives at the API's edge.
    if any("\ud800" <= char <= "\udfff" for char in text):
        raise ValueError("contains an unpaired surrogate (a broken \\u escape)")
    return text


Text = Annotated[str, AfterValidator(_no_surrogates)]


def _number_as_text(value: object) -> object:
    # An id may come as a JSON number; the service reads every choice as text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# One type rather than a union, so an error names the field alone.
IdOrWord = Annotated[
    Text,
    BeforeValidator(_number_as_text),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]}),
]


class ErrorOut(Schema):
    code: str = Field(description="Stable, for scripts: e.g. not_found, invalid_input.")
    message: str = Field(description="What went wrong and what to do, for a human.")
    field: str | None = Field(None, description="The input at fault, when there is one.")


class TaskIn(Schema):
    repository: Text = Field(description="https URL of the git repository.")
    prompt: Text
    branch: Text = Field("", description="Empty: the repository's default branch.")
    open_pull_request: bool = Field(False, description="Open a pull request when done.")
    environment: IdOrWord = Field(
        "auto",
        description='An environment\'s id, "auto" (the one matching the repository, if any) '
        'or "none".',
    )


class ContinueIn(Schema):
    prompt: Text


class MessageIn(Schema):
    text: Text = Field(description="For the agent; at most AGENT_MESSAGE_MAX_BYTES (64 KB).")


class ChangedFileOut(Schema):
    status: str = Field(description="git's letter: A added, M modified, D deleted, R renamed.")
    path: str


class UsageOut(Schema):
    input_tokens: int | None
    output_tokens: int | None
    cache_creation_input_tokens: int | None
    cache_read_input_tokens: int | None
    requests: int | None
    num_turns: int | None
    duration_ms: int | None


class PullRequestOut(Schema):
    state: str = Field(description='"", pending, opened, pushed or failed.')
    url: str
    number: int | None
    branch: str
    error: str


class MessageOut(Schema):
    seq: int = Field(description="Its place among the task's messages, from 1.")
    text: str
    created_at: datetime
    delivered_at: datetime | None = Field(description="When the running agent took it.")
    late: bool = Field(
        description="Sent once the agent had answered everything and its run was ending: it "
        "never reaches that run, and becomes a follow-up task when the task finishes."
    )
    state: str = Field(
        description='"waiting" (for the agent\'s next step), "delivered", "late" (becomes a '
        'follow-up when the task finishes), "follow_up" (became one: follow_up_id) or '
        '"not_delivered" (reached no agent: note says why; continue the task to send it on).'
    )
    note: str = Field(description="Where it stands, in the task page's words.")
    follow_up_id: int | None = Field(description="The follow-up task it became.")
    follow_up_url: str | None = Field(description="That task's page.")


class ConversationOut(Schema):
    carried: str = Field(
        description='How the task got the conversation before it: "resumed" (the earlier '
        'session), "summarised" (the earlier turns in its prompt) or "none".'
    )
    note: str
    retry_of: int | None = Field(description="The task this one runs again.")


class TurnOut(Schema):
    id: int
    status: str
    prompt: str
    answer: str


class EnvironmentRunOut(Schema):
    id: int | None = Field(description="The environment's id (null once it was deleted).")
    name: str
    version: int | None = Field(description="The version that ran (null before setup).")
    cache: str = Field(description='"hit", "miss", or "" before setup.')
    setup_seconds: float | None
    setup_exit_code: int | None


class TaskSummaryOut(Schema):
    id: int
    status: str
    repository: str
    branch: str
    prompt: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parent_id: int | None
    url: str = Field(description="The task's web page.")


class TaskOut(TaskSummaryOut):
    answer: str = Field(description="The agent's final message.")
    answer_is_error: bool | None
    error_message: str
    cost_usd: Decimal | None
    usage: UsageOut
    changed_files: list[ChangedFileOut]
    diff: str
    diff_truncated: bool
    chain: list[int] = Field(description="Ids of the tasks this one continues, itself, and after.")
    turns: list[TurnOut] = Field(description="The chain as a conversation: prompts and answers.")
    messages: list[MessageOut] = Field(description="Messages sent to the task's agent.")
    conversation: ConversationOut
    environment: EnvironmentRunOut | None = Field(description="The environment it runs with.")
    pull_request: PullRequestOut
    cancel_requested: bool
    wait_reason: str = Field(description='Why it is not running yet: "", usage_limit, engine.')
    limited_until: datetime | None = Field(description="A usage limit's announced reset.")


class TaskListOut(Schema):
    count: int
    items: list[TaskSummaryOut]


class MessageSentOut(Schema):
    kind: str = Field(
        description='"message": kept for the running agent (its state "late" when the agent '
        "had answered everything: it then becomes a follow-up when the task finishes); "
        '"follow_up": the task had finished, so the message started a follow-up task.'
    )
    message: MessageOut | None
    task: TaskOut | None = Field(description="The follow-up task, for kind follow_up.")


class CancelOut(Schema):
    status: str


class RunNowOut(Schema):
    status: str = Field(
        description='"queued": it runs now; "waiting": your running slots are all taken, and '
        "it starts on your API key as soon as one is free."
    )
    message: str = Field(description="The same, for a human.")


class CredentialOut(Schema):
    kind: str
    source: str
    status: str
    status_label: str
    expires: str
    last_refreshed: str
    last_error: str
    refreshable: bool
    expired: bool


class AuthOut(Schema):
    available: bool = Field(description="Whether a task could start now.")
    method: str = Field(description='"oauth", "api_key", or "" when none is usable.')
    title: str
    reason: str
    warning: str
    will_fail: bool
    oauth_credential: CredentialOut | None
    api_key_saved: bool
