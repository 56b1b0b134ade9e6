"""What the API takes and returns (the OpenAPI schema is made from these)."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from ninja import Field, Schema
from pydantic import AfterValidator


def _no_surrogates(text: str) -> str:
    # JSON escapes can carry a lone surrogate, which no database or git can store; form posts
    # cannot, so this check lives at the API's edge.
    if any("\ud800" <= char <= "\udfff" for char in text):
        raise ValueError("contains an unpaired surrogate (a broken \\u escape)")
    return text


Text = Annotated[str, AfterValidator(_no_surrogates)]


class ErrorOut(Schema):
    code: str = Field(description="Stable, for scripts: e.g. not_found, invalid_input.")
    message: str = Field(description="What went wrong and what to do, for a human.")
    field: str | None = Field(None, description="The input at fault, when there is one.")


class TaskIn(Schema):
    repository: Text = Field(description="https URL of the git repository.")
    prompt: Text
    branch: Text = Field("", description="Empty: the repository's default branch.")
    open_pull_request: bool = Field(False, description="Open a pull request when done.")


class ContinueIn(Schema):
    prompt: Text


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
    pull_request: PullRequestOut
    cancel_requested: bool
    wait_reason: str = Field(description='Why it is not running yet: "", usage_limit, engine.')
    limited_until: datetime | None = Field(description="A usage limit's announced reset.")


class TaskListOut(Schema):
    count: int
    items: list[TaskSummaryOut]


class CancelOut(Schema):
    status: str


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
