"""GitHub's REST API (github.com or Enterprise, at GITHUB_API_URL) as a HostingProvider.

Every refusal becomes a HostingError whose message says what to do; GitHub's own message is
added where it helps, never a token. Plain requests: one call at a time, on the worker or in a
settings-page request.
"""

import logging
import re
from datetime import UTC, datetime
from typing import Any

import requests
from django.conf import settings

from common.humanize import utc_text
from common.logging import secrets_redact

from .errors import HostingError, Refusal
from .git_env import GIT_USERNAME
from .providers import Comment, Issue, PullRequest, PushTarget, RepositoryAccess, TokenInfo
from .repositories import RepositoryRef

logger = logging.getLogger("hosting.github")

API_VERSION = "2022-11-28"
EXPIRY_HEADER = "github-authentication-token-expiration"
TOKEN_PREFIXES = ("github_pat_", "ghp_", "gho_", "ghu_", "ghs_")
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_]+$")
# Classic tokens list their scopes; either of these lets them push and open pull requests.
_WRITE_SCOPES = {"repo", "public_repo"}
# Where a comment belongs: its issue_url (issue comments) or pull_request_url (review comments).
_THREAD_URL = re.compile(r"/repos/([^/]+/[^/]+)/(issues|pulls)/([0-9]{1,15})$")


def github_token_check(*, raw: str) -> str:
    """A pasted GitHub token, checked without asking GitHub; the message never quotes it."""
    token = raw.strip()
    if not token:
        raise HostingError(Refusal.NO_TOKEN, "Paste a GitHub token.")
    if token.lower().startswith(("bearer ", "token ")):
        raise HostingError(Refusal.INVALID, "Paste the token alone, without 'Bearer' or 'token'.")
    if not token.startswith(TOKEN_PREFIXES):
        raise HostingError(
            Refusal.INVALID,
            "This does not look like a GitHub token: fine-grained tokens start with "
            "github_pat_, classic ones with ghp_.",
        )
    if not _TOKEN_CHARS.match(token):
        raise HostingError(
            Refusal.INVALID,
            "The token has characters GitHub tokens never contain (spaces, quotes or "
            "punctuation): copy it again.",
        )
    if len(token) < 30 or len(token) > 255:
        raise HostingError(
            Refusal.INVALID, "The token is too short or too long: it was probably cut off."
        )
    return token


def expiry_parse(value: str | None) -> datetime | None:
    """GitHub's token-expiry header: "2026-12-31 23:59:59 UTC" (or with a numeric offset)."""
    if not value:
        return None
    for pattern in ("%Y-%m-%d %H:%M:%S %Z", "%Y-%m-%d %H:%M:%S %z"):
        try:
            moment = datetime.strptime(value.strip(), pattern)  # noqa: DTZ007  zone set below
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


class GitHubProvider:
    def __init__(
        self, *, token: str, api_url: str | None = None, timeout: float | None = None
    ) -> None:
        if not token:
            raise HostingError(Refusal.NO_TOKEN, "No GitHub token is saved.")
        self._token = token
        self.api_url = (api_url or settings.GITHUB_API_URL).rstrip("/")
        # Seconds to connect, and again for GitHub to start answering: per call.
        self.timeout = timeout if timeout is not None else settings.GITHUB_API_TIMEOUT

    def __repr__(self) -> str:
        return f"GitHubProvider(api_url={self.api_url!r})"  # never the token

    # --- the interface -----------------------------------------------------------------------

    def token_info(self) -> TokenInfo:
        response = self._request("GET", "/user", what="read your account")
        data = _json(response)
        scopes_header = response.headers.get("x-oauth-scopes")
        scopes = (
            tuple(s.strip() for s in scopes_header.split(",") if s.strip())
            if scopes_header is not None
            else None
        )
        return TokenInfo(
            login=str(data.get("login", "")),
            name=str(data.get("name") or ""),
            expires_at=expiry_parse(response.headers.get(EXPIRY_HEADER)),
            scopes=scopes,
            user_id=_id(data.get("id")),
        )

    def repository_access(self, repo: RepositoryRef) -> RepositoryAccess:
        response = self._request(
            "GET", f"/repos/{repo.full_name}", what="read the repository", repo=repo
        )
        data = _json(response)
        permissions = data.get("permissions") or {}
        scopes_header = response.headers.get("x-oauth-scopes")
        notes: list[str] = []
        scope_ok = True
        if scopes_header is not None:  # a classic token: its scopes decide too
            scopes = {s.strip() for s in scopes_header.split(",")}
            scope_ok = bool(scopes & _WRITE_SCOPES)
            if not scope_ok:
                notes.append("The token lacks the repo scope, so it cannot push.")
        else:
            notes.append(
                "GitHub reports your role in the repository; a fine-grained token must also "
                "have Contents and Pull requests set to read and write for it."
            )
        can_push = bool(permissions.get("push")) and scope_ok
        return RepositoryAccess(
            full_name=str(data.get("full_name") or repo.full_name),
            private=bool(data.get("private")),
            default_branch=str(data.get("default_branch") or ""),
            can_push=can_push,
            can_open_pull_requests=can_push,
            notes=tuple(notes),
        )

    def push_target(self, repo: RepositoryRef) -> PushTarget:
        return PushTarget(url=repo.clone_url, username=GIT_USERNAME)

    def pull_request_find(self, repo: RepositoryRef, *, head: str) -> PullRequest | None:
        response = self._request(
            "GET",
            f"/repos/{repo.full_name}/pulls",
            params={"head": f"{repo.owner}:{head}", "state": "open"},
            what="list pull requests",
            repo=repo,
        )
        data = response.json() if response.content else []
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return _pull_request(data[0])
        return None

    def pull_request_open(
        self, repo: RepositoryRef, *, head: str, base: str, title: str, body: str
    ) -> PullRequest:
        response = self._request(
            "POST",
            f"/repos/{repo.full_name}/pulls",
            json={"title": title, "head": head, "base": base, "body": body},
            what="open pull requests",
            repo=repo,
        )
        return _pull_request(_json(response))

    def pull_request_get(self, repo: RepositoryRef, *, number: int) -> PullRequest:
        response = self._request(
            "GET", f"/repos/{repo.full_name}/pulls/{number}", what="read pull requests", repo=repo
        )
        return _pull_request(_json(response))

    def issue_comment_create(self, repo: RepositoryRef, *, number: int, body: str) -> str:
        """Comment on an issue or pull request; the comment's address."""
        response = self._request(
            "POST",
            f"/repos/{repo.full_name}/issues/{number}/comments",
            json={"body": body},
            what="comment on issues",
            repo=repo,
        )
        return str(_json(response).get("html_url", ""))

    def issue_get(self, repo: RepositoryRef, *, number: int) -> Issue:
        """Issue or pull request ``number``: GitHub's issues endpoint answers for both, and
        marks a pull request with a ``pull_request`` key."""
        data = self._read(
            repo,
            f"/repos/{repo.full_name}/issues/{number}",
            what="read issues",
            missing=f"issue or pull request #{number}",
        )
        return Issue(
            number=_id(data.get("number")) or 0,
            title=str(data.get("title") or ""),
            pull_request=isinstance(data.get("pull_request"), dict),
        )

    def comment_get(self, repo: RepositoryRef, *, comment_id: int, review: bool) -> Comment:
        """An issue comment, or (``review``) a pull request review comment: the two are numbered
        apart and live under different paths."""
        kind = "pulls" if review else "issues"
        data = self._read(
            repo,
            f"/repos/{repo.full_name}/{kind}/comments/{comment_id}",
            what="read comments",
            missing=f"{'review ' if review else ''}comment {comment_id}",
        )
        user = data.get("user")
        author: dict[str, Any] = user if isinstance(user, dict) else {}
        thread = _THREAD_URL.search(str(data.get("pull_request_url" if review else "issue_url")))
        if thread is not None and thread.group(2) != kind:
            thread = None  # a thread of the other kind: not where the comment was looked for
        return Comment(
            id=_id(data.get("id")) or 0,
            author_id=_id(author.get("id")),
            author_login=str(author.get("login") or ""),
            body=str(data.get("body") or ""),
            repository=thread.group(1) if thread else "",
            number=int(thread.group(3)) if thread else 0,
        )

    def comment_reaction_add(
        self, repo: RepositoryRef, *, comment_id: int, content: str, review: bool = False
    ) -> None:
        kind = "pulls" if review else "issues"
        self._request(
            "POST",
            f"/repos/{repo.full_name}/{kind}/comments/{comment_id}/reactions",
            json={"content": content},
            what="react to comments",
            repo=repo,
        )

    # --- plumbing ----------------------------------------------------------------------------

    def _read(self, repo: RepositoryRef, path: str, *, what: str, missing: str) -> dict[str, Any]:
        """GET ``path`` in ``repo``: its JSON object. GitHub answers 404 alike for what it does
        not have and for what the token may not see; the refusal names ``missing``."""
        try:
            response = self._request("GET", path, what=what, repo=repo)
        except HostingError as exc:
            if exc.kind != Refusal.REPOSITORY_NOT_FOUND:
                raise
            raise HostingError(
                exc.kind, f"GitHub has no {missing} in {repo.full_name} that your token can see."
            ) from None
        return _json(response)

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        repo: RepositoryRef | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "claude-runner",
        }
        try:
            response = requests.request(
                method,
                self.api_url + path,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,  # never carry the token to another host
                verify=settings.HOSTING_CA_BUNDLE or True,
                **kwargs,
            )
        except requests.Timeout:
            logger.warning("GitHub API %s %s timed out after %s s", method, path, self.timeout)
            raise HostingError(
                Refusal.UNREACHABLE,
                f"GitHub did not answer within {self.timeout:g} s; try again later.",
            ) from None
        except requests.RequestException as exc:
            logger.warning("GitHub API %s %s failed: %s", method, path, type(exc).__name__)
            raise HostingError(
                Refusal.UNREACHABLE,
                f"Could not reach GitHub at {self.api_url} ({type(exc).__name__}); "
                "try again later.",
            ) from None
        if response.status_code >= 300:
            raise github_refusal(response, what=what, repo=repo)
        return response


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise HostingError(Refusal.UNREACHABLE, "GitHub sent an answer that is not JSON.")
    return data


def _id(value: Any) -> int | None:
    """One of GitHub's numeric ids, or None for anything else."""
    valid = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63
    return value if valid else None


def _pull_request(data: dict[str, Any]) -> PullRequest:
    head = data.get("head")
    head = head if isinstance(head, dict) else {}
    # A deleted fork leaves the pull request with a null head repository.
    head_repository = (head.get("repo") or {}).get("full_name")
    return PullRequest(
        number=int(data.get("number") or 0),
        url=str(data.get("html_url") or ""),
        head=str(head.get("ref") or ""),
        base=str((data.get("base") or {}).get("ref") or ""),
        state=str(data.get("state") or "open"),
        head_repository=str(head_repository or ""),
    )


def _github_message(response: requests.Response) -> tuple[str, list[str]]:
    """GitHub's own message and the messages of its errors list (redacted, cut short)."""
    try:
        data = response.json()
    except ValueError:
        return "", []
    if not isinstance(data, dict):
        return "", []
    details = []
    for item in data.get("errors") or []:
        if isinstance(item, dict) and item.get("message"):
            details.append(secrets_redact(str(item["message"]))[:300])
        elif isinstance(item, str):
            details.append(secrets_redact(item)[:300])
    return secrets_redact(str(data.get("message") or ""))[:300], details


def github_refusal(
    response: requests.Response, *, what: str, repo: RepositoryRef | None = None
) -> HostingError:
    """One GitHub error answer as the refusal a user sees."""
    status = response.status_code
    message, details = _github_message(response)
    said = f" (GitHub said: {message})" if message else ""
    where = f" in {repo.full_name}" if repo else ""
    headers = response.headers
    if status in (403, 429) and (
        headers.get("x-ratelimit-remaining") == "0"
        or "rate limit" in message.lower()
        or "retry-after" in headers
    ):
        return HostingError(Refusal.RATE_LIMITED, _rate_limit_message(headers))
    if status == 401:
        return HostingError(
            Refusal.TOKEN_INVALID,
            "GitHub refused the token: it is wrong, expired or revoked. Save a new one on the "
            "Code agent settings page.",
        )
    if status == 403:
        return HostingError(
            Refusal.NO_PERMISSION,
            f"Your GitHub token may not {what}{where}. Give it Contents and Pull requests: read "
            f"and write for this repository, or use an account with write access{said}.",
        )
    if status == 404:
        target = repo.full_name if repo else "the repository"
        return HostingError(
            Refusal.REPOSITORY_NOT_FOUND,
            f"GitHub has no repository {target} that your token can see. Check the URL; a "
            "fine-grained token must list the repository under Repository access.",
        )
    if status == 422:
        joined = " ".join([message, *details])
        if "already exists" in joined.lower():
            return HostingError(
                Refusal.PULL_REQUEST_EXISTS,
                f"A pull request for this branch already exists{where}"
                f"{': ' + details[0] if details else ''}.",
            )
        if "no commits between" in joined.lower():
            return HostingError(
                Refusal.INVALID,
                "GitHub sees no commits between the base branch and the task's branch, so "
                "there is nothing to propose.",
            )
        return HostingError(Refusal.INVALID, f"GitHub refused the request: {joined.strip()}.")
    if status >= 500:
        return HostingError(
            Refusal.UNREACHABLE, f"GitHub answered HTTP {status}; try again in a few minutes."
        )
    return HostingError(Refusal.INVALID, f"GitHub answered HTTP {status}{said}.")


def _rate_limit_message(headers: Any) -> str:
    reset = headers.get("x-ratelimit-reset", "")
    if reset.isdigit():
        moment = datetime.fromtimestamp(int(reset), tz=UTC)
        return (
            f"GitHub's API rate limit for your token is used up; it resets at "
            f"{utc_text(moment)}. Try again after that."
        )
    retry = headers.get("retry-after", "")
    if retry.isdigit():
        return f"GitHub is limiting requests (secondary rate limit); try again in {retry} seconds."
    return "GitHub is limiting requests from your token; try again in a few minutes."
