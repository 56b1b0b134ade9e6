"""Checks on what a user submits, done before any container exists."""

import re
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from common.errors import InputError
from common.netpolicy import UrlRefused, egress_policy_for_agents, repository_url_check


class TaskInputError(InputError):
    # field None: about the submission as a whole (e.g. the owner's task limits).
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message, field=field)


class TaskNotPossible(TaskInputError):
    """What was asked cannot be done with this task as it stands (not a fault of the input):
    the message says why. The pages show it; the API answers 409 not_possible."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


class PullRequestBlocked(TaskInputError):
    """The task would open a pull request that cannot be made now (``reason``: the account's
    state). On the form its box can be unticked; a request without one words it its own way."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "open_pull_request", f"{reason} Or untick it to run the task without a pull request."
        )
        self.reason = reason


_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
# Legal for git, but never in a real branch and a classic injection vector: refused too.
_SHELL_CHARS = re.compile(r"[$;`|&<>()'\"!]")


# Each rule: the refusal, when the name breaks it. The first broken one is reported.
_BRANCH_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda name: len(name) > 255, "is longer than 255 characters; git would refuse it"),
    (lambda name: name.startswith("-"), "starts with '-'; git would refuse it"),
    (
        lambda name: bool(_BAD_REF_CHARS.search(name)),
        "contains a space, a control character or one of ~ ^ : ? * [ \\; git would refuse it",
    ),
    (
        lambda name: bool(_SHELL_CHARS.search(name)),
        "contains one of $ ; ` | & < > ( ) ' \" !, which this server does not accept",
    ),
    (
        lambda name: ".." in name or "@{" in name or "//" in name,
        "contains '..', '@{' or '//'; git would refuse it",
    ),
    (
        lambda name: name == "@" or name.startswith("/") or name.endswith(("/", ".")),
        "is '@', or starts with '/', or ends with '/' or '.'; git would refuse it",
    ),
    (
        lambda name: any(p.startswith(".") or p.endswith(".lock") for p in name.split("/")),
        "has a part that starts with '.' or ends with '.lock'; git would refuse it",
    ),
)


def branch_name_check(*, branch: str) -> str:
    """A branch name as `git check-ref-format --branch` would accept it ("" = default branch)."""
    name = branch.strip()
    if not name:
        return ""
    for broken, problem in _BRANCH_RULES:
        if broken(name):
            raise TaskInputError("branch", f"The branch name {problem}.")
    return name


def repo_url_check(*, url: str) -> str:
    """An https URL agents may reach (or file:// when local repositories are allowed), without
    credentials: the rules of common.netpolicy, which the worker's git applies too."""
    try:
        parsed = repository_url_check(
            url=url,
            local_allowed=settings.AGENT_ALLOW_LOCAL_REPOS,
            policy=egress_policy_for_agents(),
        )
    except UrlRefused as exc:
        raise TaskInputError("repo_url", exc.message) from None
    if parsed.local:
        return _local_repo_check(parsed.path)
    return parsed.url


def _local_repo_check(raw_path: str) -> str:
    """file:// only below AGENT_LOCAL_REPOS_ROOT, and only a git repository: the folder is
    mounted into the container, so anything else could expose the server's own files."""
    path = Path(raw_path)
    root = settings.AGENT_LOCAL_REPOS_ROOT
    if not root:
        raise TaskInputError(
            "repo_url", "Local repositories need AGENT_LOCAL_REPOS_ROOT set on the server."
        )
    resolved = path.resolve()
    is_repo = (resolved / "HEAD").is_file() or (resolved / ".git").exists()
    if not resolved.is_relative_to(Path(root).resolve()) or not is_repo:
        # One message for both, so the form does not reveal which server paths exist.
        raise TaskInputError(
            "repo_url", f"No git repository at that path under {root} on this server."
        )
    return f"file://{resolved}"


def prompt_check(*, prompt: str) -> str:
    text = prompt.replace("\r\n", "\n")
    if not text.strip():
        raise TaskInputError("prompt", "Write what the agent should do.")
    if "\x00" in text:
        raise TaskInputError("prompt", "The prompt contains a NUL character.")
    if len(text) > settings.AGENT_PROMPT_MAX_CHARS:
        raise TaskInputError(
            "prompt",
            f"The prompt is {len(text):,} characters; the limit is "
            f"{settings.AGENT_PROMPT_MAX_CHARS:,}.",
        )
    return text


def live_since_parse(*, text: str) -> int:
    """A task page poll's `since` (how much of the log the page shows): a plain count, or -1
    for anything else, which makes the poll draw the whole live part. Never raises."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else -1
