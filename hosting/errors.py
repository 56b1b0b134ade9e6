"""Every way a git host can refuse us, as one error with a message a user can act on.

The message never quotes a token: a refusal may be shown on a task page or written to a log.
"""

from enum import StrEnum


class Refusal(StrEnum):
    NO_TOKEN = "no_token"
    TOKEN_INVALID = "token_invalid"
    NO_PERMISSION = "no_permission"
    REPOSITORY_NOT_FOUND = "repository_not_found"
    BRANCH_PROTECTED = "branch_protected"
    PULL_REQUEST_EXISTS = "pull_request_exists"
    RATE_LIMITED = "rate_limited"
    NOT_ON_GITHUB = "not_on_github"
    EGRESS_REFUSED = "egress_refused"
    UNREACHABLE = "unreachable"
    GIT_FAILED = "git_failed"
    INVALID = "invalid"  # the host refused the request itself (e.g. no commits between branches)


class HostingError(Exception):
    """A git host (or the rules in front of it) refused; ``message`` says what to do."""

    def __init__(self, kind: Refusal, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


NO_TOKEN_MESSAGE = (
    "No GitHub token is saved. Connect GitHub on the Code agent settings page "
    "(a fine-grained token with Contents and Pull requests: read and write)."
)
