"""Before a mention starts anything: which runner user the commenter is, and GitHub's word that
the comment exists, was written by that user's GitHub account, belongs to the delivery's issue or
pull request and mentions the runner. Until then a delivery is claims, signed with a secret that
everyone who adds the webhook holds.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User

from hosting.errors import HostingError
from hosting.models import GitHubConnection
from hosting.selectors import github_connections_of_commenter
from hosting.services import comment_get, github_connection_identify, issue_get

from .mention_text import mention_prompt

logger = logging.getLogger(__name__)


class MentionIgnored(Exception):
    """Nothing starts and nothing is posted; the message says why (the delivery's outcome)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Mention:
    """What a delivery claims: data, until GitHub confirms the comment."""

    full_name: str
    repo_url: str
    number: int  # the issue or pull request
    comment_id: int
    login: str  # who commented, by the delivery
    user_id: int | None  # their numeric GitHub id, by the delivery
    review: bool  # a pull request review comment (numbered apart from issue comments)


@dataclass(frozen=True)
class MentionConfirmed:
    """What GitHub says of a mention's comment and its thread."""

    prompt: str  # the comment's words after the mention
    pull_request: bool  # the thread is a pull request, not an issue
    title: str  # the issue's ("" for a pull request: nothing reads it)


@dataclass(frozen=True)
class Commenter:
    user: User
    github_id: int  # the numeric id of the GitHub user the saved token belongs to


def commenter_find(*, mention: Mention) -> Commenter:
    """The one active runner user whose saved token may belong to the commenter. A connection
    saved before ids were kept is identified with GitHub first."""
    candidates = github_connections_of_commenter(user_id=mention.user_id, login=mention.login)
    if not candidates:
        raise MentionIgnored("the commenter has no connected account")
    if len(candidates) > 1:
        raise _ambiguous(mention.login, candidates)
    connection = candidates[0]
    if connection.github_id is None:
        try:
            connection = github_connection_identify(connection=connection)
        except HostingError as exc:
            raise MentionIgnored(
                f"GitHub did not say whose the commenter's saved token is: {exc.message}"
            ) from None
        # Another account may have saved a token of the same GitHub user under its old login.
        same = github_connections_of_commenter(user_id=connection.github_id, login="")
        if len(same) > 1:
            raise _ambiguous(mention.login, same)
    assert connection.github_id is not None  # known, or github_connection_identify raised
    return Commenter(user=connection.owner, github_id=connection.github_id)


def _ambiguous(login: str, connections: list[GitHubConnection]) -> MentionIgnored:
    owners = ", ".join(str(c.owner_id) for c in connections)
    logger.warning(
        "GitHub user %s is connected by several runner users (%s): nothing starts", login, owners
    )
    return MentionIgnored(
        f"ambiguous: GitHub user {login} is connected by {len(connections)} runner users"
    )


def mention_confirm(*, commenter: Commenter, mention: Mention) -> MentionConfirmed:
    """The prompt, from the comment as GitHub has it, once GitHub confirms the delivery's
    claims with the commenter's token; and what its thread is, from GitHub too (the delivery's
    title would go into the prompt, and its "pull request" would choose the branch)."""
    try:
        comment = comment_get(
            user=commenter.user,
            repo_url=mention.repo_url,
            comment_id=mention.comment_id,
            review=mention.review,
        )
    except HostingError as exc:
        raise MentionIgnored(f"GitHub does not confirm the comment: {exc.message}") from None
    if comment.id != mention.comment_id:
        raise MentionIgnored(f"GitHub answered with comment {comment.id}, not {mention.comment_id}")
    if comment.author_id != commenter.github_id:
        raise MentionIgnored(
            f"the comment on GitHub is by {comment.author_login or 'someone else'} (GitHub user "
            f"{comment.author_id}), not by the owner of the saved token ({commenter.github_id})"
        )
    where = f"{comment.repository}#{comment.number}"
    if (comment.repository.lower(), comment.number) != (mention.full_name.lower(), mention.number):
        raise MentionIgnored(f"the comment on GitHub belongs to {where}, not #{mention.number}")
    prompt = mention_prompt(text=comment.body, name=settings.GITHUB_MENTION_NAME)
    if prompt is None:
        raise MentionIgnored("the comment on GitHub does not mention the runner")
    if mention.review:  # review comments exist on pull requests alone
        return MentionConfirmed(prompt=prompt, pull_request=True, title="")
    try:
        thread = issue_get(user=commenter.user, repo_url=mention.repo_url, number=mention.number)
    except HostingError as exc:
        raise MentionIgnored(f"GitHub does not confirm #{mention.number}: {exc.message}") from None
    if thread.number != mention.number:
        raise MentionIgnored(f"GitHub answered with #{thread.number}, not #{mention.number}")
    return MentionConfirmed(prompt=prompt, pull_request=thread.pull_request, title=thread.title)
