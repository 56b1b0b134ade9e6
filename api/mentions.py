"""Tasks from GitHub comments: a signed webhook delivery whose comment mentions this runner
(`@<GITHUB_MENTION_NAME> <prompt>`) starts a task as the user whose saved GitHub token belongs to
the commenter; in a pull request it continues on the pull request's branch. Everything in a
delivery is data until GitHub confirms it (mention_checks): the comment, its author, its thread
and its words are read back from GitHub with the user's token, and a comment is acted on once.
"""

import hashlib
import hmac
import json
import logging
import re
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from common.text import text_visible
from hosting.errors import HostingError
from hosting.markdown import github_references_defuse
from hosting.repositories import RepositoryRef
from hosting.services import (
    comment_react,
    issue_comment_post,
    pull_request_get,
    repository_access_get,
    repository_parse,
)
from tasks.follow_ups import task_continue
from tasks.models import CodingTask
from tasks.pull_requests.create import DONE_STATES
from tasks.selectors import tasks_for_user
from tasks.services import task_submit
from tasks.validation import TaskInputError, TaskNotPossible

from .mention_checks import (
    Mention,
    MentionConfirmed,
    MentionIgnored,
    commenter_find,
    mention_confirm,
)
from .mention_text import mention_prompt
from .models import GitHubDelivery, TaskMention

logger = logging.getLogger(__name__)

EVENTS = ("issue_comment", "pull_request_review_comment")
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")


class WebhookRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def signature_valid(*, body: bytes, signature: str) -> bool:
    secret = settings.GITHUB_WEBHOOK_SECRET.encode()
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def _text(data: Any, *path: str) -> str:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, str) else ""


def _number(data: Any, *path: str) -> int:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    valid = isinstance(data, int) and not isinstance(data, bool) and 0 < data < 2**53
    return data if valid else 0


def mention_parse(*, event: str, payload: Any) -> Mention | None:
    """The mention a delivery claims, or None when there is nothing to act on. Its body is only
    a first look (no GitHub call for comments that mention nobody): the prompt, and what the
    thread is, are GitHub's."""
    if event not in EVENTS or _text(payload, "action") != "created":
        return None
    found = mention_prompt(
        text=_text(payload, "comment", "body"), name=settings.GITHUB_MENTION_NAME
    )
    review = event == "pull_request_review_comment"
    number = _number(payload, "pull_request" if review else "issue", "number")
    comment_id = _number(payload, "comment", "id")
    if found is None or not number or not comment_id:
        return None
    return Mention(
        full_name=_text(payload, "repository", "full_name"),
        repo_url=_text(payload, "repository", "clone_url"),
        number=number,
        comment_id=comment_id,
        login=_text(payload, "comment", "user", "login"),
        user_id=_number(payload, "comment", "user", "id") or None,
        review=review,
    )


def github_delivery_receive(*, delivery_id: str, event: str, signature: str, body: bytes) -> str:
    """Act on one delivery; what came of it, in words. Raises WebhookRefused (forged, malformed)."""
    if not settings.GITHUB_WEBHOOK_SECRET:
        raise WebhookRefused(404, "GitHub mentions are turned off on this server.")
    if not signature_valid(body=body, signature=signature):
        raise WebhookRefused(401, "The signature does not match.")
    if not _DELIVERY_ID.match(delivery_id):
        raise WebhookRefused(400, "No valid X-GitHub-Delivery header.")
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookRefused(400, "The body is not valid JSON.") from None
    try:
        with transaction.atomic():
            delivery = GitHubDelivery.objects.create(delivery_id=delivery_id, event=event[:64])
    except IntegrityError:
        return "duplicate"  # a redelivery: it was acted on the first time
    try:
        outcome = _act(delivery, mention_parse(event=event, payload=payload))
    except MentionIgnored as exc:
        outcome = f"ignored: {exc.message}"
    if outcome.startswith(("ignored", "duplicate")):
        logger.info("GitHub delivery %s (%s): %s", delivery_id, event[:64], outcome)
    GitHubDelivery.objects.filter(pk=delivery.pk).update(outcome=outcome[:255])
    return outcome


def _comment_claim(delivery: GitHubDelivery, mention: Mention) -> bool:
    """Mark the delivery as the one for its comment; False when another delivery already is
    (the unique key holds against concurrent deliveries too)."""
    try:
        with transaction.atomic():
            GitHubDelivery.objects.filter(pk=delivery.pk).update(
                repository=mention.full_name.lower()[:255], comment_id=mention.comment_id
            )
    except IntegrityError:
        return False
    return True


def _act(delivery: GitHubDelivery, mention: Mention | None) -> str:
    if mention is None:
        return "ignored: no mention"
    try:
        repo = repository_parse(url=mention.repo_url)
    except HostingError:
        return "ignored: not a repository on the configured GitHub"
    if repo.full_name.lower() != mention.full_name.lower():
        return "ignored: the repository does not match"
    commenter = commenter_find(mention=mention)
    user = commenter.user
    confirmed = mention_confirm(commenter=commenter, mention=mention)
    if not _comment_claim(delivery, mention):
        return "duplicate: the comment was acted on already"
    _react(user, mention)
    try:
        if not repository_access_get(user=user, repo_url=mention.repo_url).can_push:
            message = (
                f"your GitHub token cannot push to {mention.full_name}. Save a token with "
                "Contents and Pull requests: read and write on the Code agent settings page."
            )
            _reply(user, mention, f"I could not start a task: {message}")
            return f"refused: {message}"
        pull_request = confirmed.pull_request
        parent = _pull_request_task(user, repo, mention.number) if pull_request else None
        head = _head_branch(user, mention) if pull_request and parent is None else ""
        # One transaction: the task's job is queued once its mention is saved, so the reply
        # at its end always finds where to go.
        with transaction.atomic():
            task = _task_start(user, mention, confirmed, parent=parent, head=head)
            TaskMention.objects.create(
                task=task,
                repo_url=mention.repo_url,
                number=mention.number,
                comment_id=mention.comment_id,
            )
    except (TaskInputError, HostingError) as exc:
        _reply(user, mention, f"I could not start a task: {exc.message}")
        return f"refused: {exc.message}"
    return f"task {task.pk}"


def _head_branch(user: User, mention: Mention) -> str:
    """The pull request's head branch, as GitHub has it; a fork's branch is not in this
    repository (one of the same name there is another branch), so a fork is refused."""
    pull = pull_request_get(user=user, repo_url=mention.repo_url, number=mention.number)
    if pull.head_repository.lower() != mention.full_name.lower():
        source = pull.head_repository or "a repository that no longer exists"
        raise TaskNotPossible(
            f"pull request #{mention.number} comes from a fork ({source}). Tasks work only on "
            f"branches of {mention.full_name}: push the branch there, or mention me in an issue."
        )
    return pull.head


def _task_start(
    user: User,
    mention: Mention,
    confirmed: MentionConfirmed,
    *,
    parent: CodingTask | None,
    head: str,
) -> CodingTask:
    """An issue: a new task with a pull request naming the issue. The runner's own pull request
    (parent): a follow-up whose commits update it. Another pull request: a task on its head."""
    prompt = confirmed.prompt
    if parent is not None:
        return task_continue(parent=parent, prompt=prompt)
    if confirmed.pull_request:
        return task_submit(
            owner=user,
            repo_url=mention.repo_url,
            branch=head,
            prompt=prompt,
            open_pull_request=True,
        )
    # The reference ends up in the pull request's description, so GitHub links the two; the
    # title is someone else's words, unable to mention, close, reorder or hide anything.
    title = github_references_defuse(text_visible(confirmed.title.strip()[:200]))
    reference = f"From {mention.full_name}#{mention.number}: {title}"
    return task_submit(
        owner=user,
        repo_url=mention.repo_url,
        prompt=f"{prompt}\n\n{reference}",
        open_pull_request=True,
    )


def _pull_request_task(user: User, repo: RepositoryRef, number: int) -> CodingTask | None:
    """The user's latest finished task whose pull request this is: in the same repository,
    however its URL was written when the task was made (with or without .git, its case)."""
    candidates = (
        tasks_for_user(user=user)
        .filter(pull_request__number=number, pull_request__state__in=DONE_STATES)
        .select_related("pull_request")
        .defer("pull_request__bundle")
        .order_by("-created_at")
    )
    return next((task for task in candidates if _same_repository(task.repo_url, repo)), None)


def _same_repository(url: str, repo: RepositoryRef) -> bool:
    try:
        other = repository_parse(url=url)
    except HostingError:
        return False  # not on the configured GitHub: no pull request of the runner's there
    return (other.host, other.port, other.full_name.lower()) == (
        repo.host,
        repo.port,
        repo.full_name.lower(),
    )


def _react(user: User, mention: Mention) -> None:
    try:
        comment_react(
            user=user,
            repo_url=mention.repo_url,
            comment_id=mention.comment_id,
            review=mention.review,
        )
    except HostingError as exc:
        logger.info("No reaction to comment %s: %s", mention.comment_id, exc.kind)


def _reply(user: User, mention: Mention, text: str) -> None:
    try:
        issue_comment_post(user=user, repo_url=mention.repo_url, number=mention.number, body=text)
    except HostingError as exc:
        logger.info("No reply in %s#%s: %s", mention.full_name, mention.number, exc.kind)
