"""Actions on git hosting: the user's GitHub connection, and what a task needs from the host
(its token for git, the pull request). Git itself is in hosting.git, the API in hosting.github.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.text import slugify

from .check_quota import github_check_admit, github_check_release
from .errors import NO_TOKEN_MESSAGE, HostingError, Refusal
from .github import GitHubProvider, github_token_check
from .markdown import agent_words_quote, blockquote
from .models import GitHubConnection
from .providers import Comment, Issue, PullRequest, RepositoryAccess, TokenInfo
from .repositories import RepositoryRef, github_repository_parse

logger = logging.getLogger("hosting.services")

BRANCH_PREFIX = "claude-runner/"
TITLE_MAX_CHARS = 72
BODY_MAX_CHARS = 60_000  # GitHub refuses bodies over 65,536 characters
PROMPT_QUOTE_MAX_CHARS = 20_000  # the rest of the body is the agent's summary's
CUT_NOTE = "\n>\n> …(cut at GitHub's size limit)"


# --- the connection --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    """What GitHub said about a token, and about one repository when one was named."""

    token: TokenInfo | None = None
    token_error: HostingError | None = None
    repository: RepositoryAccess | None = None
    repository_error: HostingError | None = None
    throttled: str = ""  # not asked: the user's live checks are used up for now


def github_token_get(*, user: User) -> str:
    """The user's saved GitHub token, or "" when none is saved."""
    connection = GitHubConnection.objects.filter(owner=user).only("token").first()
    return connection.token if connection else ""


def github_provider_for_user(*, user: User) -> GitHubProvider:
    token = github_token_get(user=user)
    if not token:
        raise HostingError(Refusal.NO_TOKEN, NO_TOKEN_MESSAGE)
    return GitHubProvider(token=token)


def repository_parse(*, url: str) -> RepositoryRef:
    return github_repository_parse(url=url, api_url=settings.GITHUB_API_URL)


def github_connection_check(*, user: User, token: str, repository: str = "") -> ConnectionCheck:
    """Ask GitHub who ``token`` belongs to and, when ``repository`` is given, what it may do
    there: within the user's live-check quota, and with the short GITHUB_CHECK_TIMEOUT. Never
    raises for GitHub's answers: each part carries its own error."""
    admission = github_check_admit(user=user)
    if admission.wait_seconds:
        return ConnectionCheck(throttled=admission.message)
    try:
        return _connection_ask(token=token, repository=repository)
    finally:
        github_check_release(user=user)


def _connection_ask(*, token: str, repository: str) -> ConnectionCheck:
    try:
        provider = GitHubProvider(
            token=github_token_check(raw=token), timeout=settings.GITHUB_CHECK_TIMEOUT
        )
        info = provider.token_info()
    except HostingError as exc:
        return ConnectionCheck(token_error=exc)
    if not repository.strip():
        return ConnectionCheck(token=info)
    try:
        access = provider.repository_access(repository_parse(url=repository))
    except HostingError as exc:
        return ConnectionCheck(token=info, repository_error=exc)
    return ConnectionCheck(token=info, repository=access)


def github_connection_save(*, user: User, token: str) -> GitHubConnection:
    """Check the token with GitHub and save it (replacing any saved one). A token GitHub refuses
    is not saved, and the saved one stays. Counts as a live check (it asks GitHub the same)."""
    checked = github_token_check(raw=token)
    admission = github_check_admit(user=user)
    if admission.wait_seconds:
        raise HostingError(Refusal.RATE_LIMITED, admission.message)
    try:
        info = GitHubProvider(token=checked, timeout=settings.GITHUB_CHECK_TIMEOUT).token_info()
    finally:
        github_check_release(user=user)
    connection, _ = GitHubConnection.objects.update_or_create(
        owner=user,
        defaults={
            "token": checked,
            "token_last4": checked[-4:],
            "login": info.login,
            "github_id": info.user_id,
            "expires_at": info.expires_at,
            "api_url": settings.GITHUB_API_URL,
            "checked_at": timezone.now(),
        },
    )
    logger.info("GitHub connection saved for user %s (GitHub user %s)", user.pk, info.login)
    return connection


def github_connection_identify(*, connection: GitHubConnection) -> GitHubConnection:
    """Ask GitHub who the saved token belongs to now, and keep its numeric id and login: for a
    connection saved before the id was kept. HostingError when GitHub does not say."""
    info = GitHubProvider(token=connection.token).token_info()
    if info.user_id is None:
        raise HostingError(Refusal.INVALID, "GitHub did not say which user the token belongs to.")
    connection.github_id, connection.login = info.user_id, info.login
    connection.checked_at = timezone.now()
    connection.save(update_fields=["github_id", "login", "checked_at", "updated_at"])
    logger.info(
        "GitHub connection of user %s identified: GitHub user %s (%s)",
        connection.owner_id,
        info.login,
        info.user_id,
    )
    return connection


def github_connection_remove(*, user: User) -> bool:
    deleted, _ = GitHubConnection.objects.filter(owner=user).delete()
    return bool(deleted)


# --- pull requests ---------------------------------------------------------------------------


def pull_request_branch_name(*, task_id: int, prompt: str) -> str:
    """``claude-runner/<task id>-<slug of the prompt>``: readable, and valid for git."""
    words = " ".join(prompt.split()[:8])
    slug = slugify(words)[:40].strip("-_.") or "task"
    return f"{BRANCH_PREFIX}{task_id}-{slug}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - len(CUT_NOTE))] + CUT_NOTE


def pull_request_text(
    *, prompt: str, summary: str, cost_usd: Decimal | None, task_url: str
) -> tuple[str, str]:
    """The title (the prompt's first line, shortened) and the body of a task's pull request.

    The prompt is the owner's own words; the summary is the agent's, which a repository can
    steer: it is quoted, marked as the agent's, and defused (hosting.markdown), so it can
    neither notify, link or close anything on GitHub nor pass for the runner's own lines."""
    first = next((line.strip() for line in prompt.splitlines() if line.strip()), "Claude task")
    title = first if len(first) <= TITLE_MAX_CHARS else first[: TITLE_MAX_CHARS - 1] + "…"
    cost = f"${cost_usd:.4f}" if cost_usd is not None else "not reported"
    footer = f"\n\n---\nCost: {cost} · Task: {task_url}\n\n_Opened by Claude Runner._"
    prompt_part = "## Prompt\n\n" + _cut(blockquote(prompt.strip()), PROMPT_QUOTE_MAX_CHARS)
    heading = "\n\n## What the agent says it did\n\n"
    if summary.strip():
        intro = (
            "_The agent's own words, quoted as it wrote them; mentions, issue references and "
            "closing keywords in them are defused, and invisible characters shown as escapes._\n\n"
        )
        room = BODY_MAX_CHARS - len(prompt_part) - len(heading) - len(intro) - len(footer)
        agent_part = intro + _cut(agent_words_quote(summary.strip()), room)
    else:
        agent_part = "_The agent gave no summary._"
    return title, prompt_part + heading + agent_part + footer


def pull_request_open(
    *, user: User, repo_url: str, head: str, base: str, title: str, body: str
) -> PullRequest:
    """Open a pull request from ``head`` into ``base``. One already open for ``head`` is a
    refusal (PULL_REQUEST_EXISTS) whose message links to it."""
    repo = repository_parse(url=repo_url)
    provider = github_provider_for_user(user=user)
    existing = provider.pull_request_find(repo, head=head)
    if existing is not None:
        raise HostingError(
            Refusal.PULL_REQUEST_EXISTS,
            f"A pull request for branch {head} already exists: #{existing.number} "
            f"({existing.url}).",
        )
    pull = provider.pull_request_open(repo, head=head, base=base, title=title, body=body)
    logger.info("Pull request #%s opened in %s from %s", pull.number, repo.full_name, head)
    return pull


def pull_request_find(*, user: User, repo_url: str, head: str) -> PullRequest | None:
    repo = repository_parse(url=repo_url)
    return github_provider_for_user(user=user).pull_request_find(repo, head=head)


# --- conversations on GitHub (mentions) --------------------------------------------------------


def pull_request_get(*, user: User, repo_url: str, number: int) -> PullRequest:
    repo = repository_parse(url=repo_url)
    return github_provider_for_user(user=user).pull_request_get(repo, number=number)


def issue_comment_post(*, user: User, repo_url: str, number: int, body: str) -> str:
    """Comment on an issue or pull request with the user's token; the comment's address."""
    repo = repository_parse(url=repo_url)
    text = body if len(body) <= BODY_MAX_CHARS else body[:BODY_MAX_CHARS] + CUT_NOTE
    return github_provider_for_user(user=user).issue_comment_create(repo, number=number, body=text)


def issue_get(*, user: User, repo_url: str, number: int) -> Issue:
    """Issue or pull request ``number`` as GitHub has it: its title, and which of the two."""
    repo = repository_parse(url=repo_url)
    return github_provider_for_user(user=user).issue_get(repo, number=number)


def comment_get(*, user: User, repo_url: str, comment_id: int, review: bool) -> Comment:
    """An issue comment, or (``review``) a pull request review comment, as GitHub has it."""
    repo = repository_parse(url=repo_url)
    return github_provider_for_user(user=user).comment_get(
        repo, comment_id=comment_id, review=review
    )


def comment_react(
    *, user: User, repo_url: str, comment_id: int, review: bool = False, content: str = "eyes"
) -> None:
    repo = repository_parse(url=repo_url)
    github_provider_for_user(user=user).comment_reaction_add(
        repo, comment_id=comment_id, content=content, review=review
    )


def repository_access_get(*, user: User, repo_url: str) -> RepositoryAccess:
    """What the user's token may do in the repository (HostingError when it cannot see it)."""
    repo = repository_parse(url=repo_url)
    return github_provider_for_user(user=user).repository_access(repo)
