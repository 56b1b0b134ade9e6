"""A git host, as the rest of the project sees it: who a token belongs to, what it may do in a
repository, where to push, and pull requests. GitHub (hosting.github) is the one implementation;
a GitLab one would answer the same questions with merge requests.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .repositories import RepositoryRef


@dataclass(frozen=True)
class TokenInfo:
    login: str
    name: str
    expires_at: datetime | None  # None: the host reported no expiry
    scopes: tuple[str, ...] | None  # classic tokens report scopes; fine-grained ones do not
    user_id: int | None = None  # the host's numeric id of the user: it survives a rename


@dataclass(frozen=True)
class RepositoryAccess:
    full_name: str
    private: bool
    default_branch: str
    can_push: bool
    can_open_pull_requests: bool
    notes: tuple[str, ...] = ()  # what the host could not tell us


@dataclass(frozen=True)
class PushTarget:
    url: str  # https clone/push URL, never with credentials in it
    username: str  # what git sends as the user name with the token


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str  # the page a person opens
    head: str
    base: str
    state: str = "open"
    head_repository: str = ""  # owner/name the head branch is in; "" when it is gone


@dataclass(frozen=True)
class Comment:
    """A comment on an issue or pull request, as the host has it."""

    id: int
    author_id: int | None
    author_login: str
    body: str
    repository: str  # owner/name of the issue or pull request it belongs to
    number: int  # of that issue or pull request; 0 when the host did not say


@dataclass(frozen=True)
class Issue:
    """An issue or pull request (the host numbers them together), as the host has it."""

    number: int
    title: str
    pull_request: bool


class HostingProvider(Protocol):
    """One user's view of one git host (the token is given when the provider is made)."""

    def token_info(self) -> TokenInfo: ...

    def repository_access(self, repo: RepositoryRef) -> RepositoryAccess: ...

    def push_target(self, repo: RepositoryRef) -> PushTarget: ...

    def pull_request_find(self, repo: RepositoryRef, *, head: str) -> PullRequest | None: ...

    def pull_request_open(
        self, repo: RepositoryRef, *, head: str, base: str, title: str, body: str
    ) -> PullRequest: ...
