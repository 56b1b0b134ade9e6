import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from environments.models import TaskEnvironment

from .models import (
    FINISHED_STATUSES,
    LATE_FOLLOW_UP_STATUSES,
    CodingTask,
    TaskConversation,
    TaskLogProgress,
    TaskMessage,
    TaskPullRequest,
    TaskStatus,
    live_state_token,
)

# Beyond this much new log a poll draws the whole live part again instead of sending a tail.
LIVE_TAIL_MAX_CHARS = 64 * 1024

# What the live part shows besides the status, cancel, wait reason, messages and log, as the
# poll reads it: the credential the run chose (recorded once the task runs) and how it ended,
# from the task's row; the environment's setup facts, and its revision for the setup log (too
# long to read on every poll).
LIVE_TASK_FACTS = (
    "auth_method",
    "auth_source",
    "auth_refreshed",
    "auth_fallback",
    "auth_note",
    "exit_code",
    "error_message",
)
# Every write of a run's setup facts (environments.services.task_environment_record) bumps its
# revision: that one column tells the poll they changed.
LIVE_ENVIRONMENT_FACTS = ("revision",)


def tasks_for_user(*, user: User) -> QuerySet[CodingTask]:
    return CodingTask.objects.filter(owner=user).defer("log", "diff")


def task_get_for_user(*, user: User, task_id: int) -> CodingTask:
    """The user's own task; another user's task is a 404, as if it did not exist. Without the
    agent's commits (up to AGENT_BUNDLE_MAX_BYTES): pages ask task_bundle_kept instead."""
    return get_object_or_404(
        CodingTask.objects.select_related("usage", "limit", "pull_request", "log_progress").defer(
            "pull_request__bundle"
        ),
        pk=task_id,
        owner=user,
    )


def task_bundle_kept(*, task_id: int) -> bool:
    """Whether the task's commits were kept (without reading them)."""
    return (
        TaskPullRequest.objects.filter(pk=task_id, bundle__isnull=False)
        .exclude(bundle=b"")
        .exists()
    )


def diff_lines(*, diff: str) -> list[tuple[str, str]]:
    """(css class, line) pairs for a coloured diff."""
    lines = []
    for line in diff.splitlines():
        if line.startswith(("diff --git", "+++ ", "--- ", "new file", "deleted file", "index ")):
            css = "file"
        elif line.startswith("@@"):
            css = "hunk"
        elif line.startswith("+"):
            css = "add"
        elif line.startswith("-"):
            css = "del"
        else:
            css = ""
        lines.append((css, line))
    return lines


def task_chain(*, task: CodingTask) -> list[CodingTask]:
    """The tasks this one continues (oldest first), itself, and the tasks that continue it."""
    before: list[CodingTask] = []
    seen = {task.pk}
    current = task.parent
    while current is not None and current.pk not in seen:
        before.append(current)
        seen.add(current.pk)
        current = current.parent
    after: list[CodingTask] = []
    frontier = [task]
    while frontier:
        children = list(
            CodingTask.objects.filter(parent__in=frontier)
            .exclude(pk__in=seen)
            .defer("log", "diff")
            .order_by("created_at", "pk")
        )
        seen.update(c.pk for c in children)
        after += children
        frontier = children
    return [*reversed(before), task, *after]


class MessageFate(StrEnum):
    """Where a message to a task's agent stands, as its page and the API say it."""

    WAITING = "waiting"  # for the running agent's next step
    DELIVERED = "delivered"  # the agent took it
    LATE = "late"  # came after the agent's run ended: the follow-up the task's end makes
    FOLLOW_UP = "follow_up"  # went into that follow-up
    NOT_DELIVERED = "not_delivered"  # reached no agent; `words` says why


@dataclass(frozen=True)
class SentMessage:
    message: TaskMessage
    fate: MessageFate
    words: str  # what the page says of it, after its text
    follow_up_id: int | None = None


def message_fate(*, message: TaskMessage, task_status: str) -> SentMessage:
    """Where ``message`` stands, its task being in ``task_status``."""
    finished = task_status in FINISHED_STATUSES
    if message.delivered_at is not None:
        return SentMessage(message, MessageFate.DELIVERED, "taken by the agent")
    if message.followed_up_at is not None:
        if message.follow_up_id is None:
            return SentMessage(message, MessageFate.FOLLOW_UP, "became a follow-up (deleted since)")
        words = f"became follow-up #{message.follow_up_id}"
        return SentMessage(message, MessageFate.FOLLOW_UP, words, message.follow_up_id)
    if message.not_delivered:
        return SentMessage(
            message, MessageFate.NOT_DELIVERED, f"not delivered: {message.not_delivered}"
        )
    if not message.late:
        if finished:
            words = "not delivered: the run ended before the agent took it"
            return SentMessage(message, MessageFate.NOT_DELIVERED, words)
        return SentMessage(message, MessageFate.WAITING, "waiting for the agent's next step")
    if task_status == TaskStatus.CANCELLED:
        words = "not delivered: the task was cancelled before it could become a follow-up"
        return SentMessage(message, MessageFate.NOT_DELIVERED, words)
    when = "shortly" if task_status in LATE_FOLLOW_UP_STATUSES else "when the task finishes"
    words = f"came after the agent had answered everything: it becomes a follow-up {when}"
    return SentMessage(message, MessageFate.LATE, words)


def task_messages_sent(*, task: CodingTask) -> list[SentMessage]:
    """The messages sent to the task, oldest first, each with where it stands."""
    return [
        message_fate(message=message, task_status=task.status)
        for message in TaskMessage.objects.filter(task=task).order_by("seq")
    ]


def messages_mark(*, sent: list[SentMessage]) -> str:
    """What a page's poll compares of the messages, as the poll's query computes it
    (_live_poll_sql): how many, how many delivered, how many late; "" for none. A running
    task's message changes only those (the rest comes with its end, which reloads the page)."""
    if not sent:
        return ""
    delivered = sum(1 for s in sent if s.message.delivered_at is not None)
    late = sum(1 for s in sent if s.message.late)
    return f"{len(sent)}-{delivered}-{late}"


def live_facts_mark(*, facts: Sequence[object]) -> str:
    """A short mark of the values of LIVE_TASK_FACTS then LIVE_ENVIRONMENT_FACTS (None for a
    task without an environment), alike whether the ORM or the poll's query read them; "" while
    none is set."""
    if not any(facts):
        return ""
    # A database's 0 and 1 are the ORM's False and True.
    text = "\x1f".join(
        "" if v is None else str(int(v)) if isinstance(v, bool) else str(v) for v in facts
    )
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()


def task_live_state(
    *, task: CodingTask, sent: list[SentMessage], environment_run: TaskEnvironment | None
) -> str:
    """The live part's state token as the poll computes it (task_live_poll)."""
    facts = [getattr(task, name) for name in LIVE_TASK_FACTS]
    facts += [getattr(environment_run, name, None) for name in LIVE_ENVIRONMENT_FACTS]
    return live_state_token(
        status=task.status,
        cancel_requested=task.cancel_requested,
        wait_reason=task.wait_reason,
        messages=messages_mark(sent=sent),
        facts=live_facts_mark(facts=facts),
    )


@dataclass(frozen=True)
class ChainTurn:
    """One task of a chain as a turn of the conversation: its prompt, the messages sent to
    it, its answer and its diff."""

    task: CodingTask
    conversation: TaskConversation
    messages: list[SentMessage]
    diff: list[tuple[str, str]]


def chain_turns(*, task: CodingTask) -> list[ChainTurn]:
    """The chain (tasks.selectors.task_chain) as turns, oldest first."""
    chain = task_chain(task=task)
    pks = [link.pk for link in chain]
    statuses = {link.pk: link.status for link in chain}
    conversations = TaskConversation.objects.defer("transcript").in_bulk(pks)
    sent: dict[int, list[SentMessage]] = {}
    for message in TaskMessage.objects.filter(task_id__in=pks).order_by("seq"):
        fate = message_fate(message=message, task_status=statuses[message.task_id])
        sent.setdefault(message.task_id, []).append(fate)
    return [
        ChainTurn(link, conversations[link.pk], sent.get(link.pk, []), diff_lines(diff=link.diff))
        for link in chain
    ]


class LiveChange(StrEnum):
    NOTHING = "nothing"
    LOG = "log"  # only the log moved on: `tail` is the part the page has not shown
    ALL = "all"  # draw the live part again
    FINISHED = "finished"  # reload the page once, for the result


@dataclass(frozen=True)
class LivePoll:
    change: LiveChange
    state: str = ""
    tail: str = ""
    since: int = 0  # the log's count of characters that the page shows after this answer


def task_live_poll(*, user: User, task_id: int, state: str, since: int) -> LivePoll:
    """What changed on the user's task since a page showed `state` and `since` characters of
    its log: one query of a few columns (the messages' mark and the live facts among them), with
    the log's new tail only when there is one (read with its count, so a flush cannot split
    them); no template. Another user's task is a 404."""
    with connection.cursor() as cursor:
        cursor.execute(
            _live_poll_sql(),
            [state.partition(".")[0], since, since + LIVE_TAIL_MAX_CHARS, since, task_id, user.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such task.")
    status, cancel_requested, wait_reason, count, tail, messages, *facts = row
    if status in FINISHED_STATUSES:
        return LivePoll(LiveChange.FINISHED)
    now_state = live_state_token(
        status=status,
        cancel_requested=bool(cancel_requested),
        wait_reason=wait_reason,
        messages=messages or "",
        facts=live_facts_mark(facts=facts),
    )
    if now_state == state and count == since:
        return LivePoll(LiveChange.NOTHING)
    # A page that shows no log yet ("nothing yet") gets the whole part, as does a stale one;
    # so does one whose log lost its start meanwhile (a new run's log, or one cut).
    if now_state != state or since <= 0 or len(tail) != count - since:
        return LivePoll(LiveChange.ALL)
    return LivePoll(LiveChange.LOG, state=now_state, tail=tail, since=count)


@functools.cache
def _live_poll_sql() -> str:
    """The poll's query, written once: every page polls, and building it with the ORM's
    expressions (a join, a CASE, RIGHT) each time cost more than the rest of the request.
    The tail is read only for the page's own status and a grown log, never too much."""
    q = connection.ops.quote_name
    log, written = f"t.{q('log')}", f"p.{q('chars_written')}"
    # SQLite has no RIGHT(); a negative start in SUBSTR() counts from the end.
    tail = (
        f"SUBSTR({log}, -({written} - %s))"
        if connection.vendor == "sqlite"
        else f"RIGHT({log}, CAST({written} - %s AS integer))"
    )
    tables = (
        f"{q(CodingTask._meta.db_table)} t LEFT JOIN {q(TaskLogProgress._meta.db_table)} p "
        f"ON p.{q('task_id')} = t.{q('id')} LEFT JOIN {q(TaskEnvironment._meta.db_table)} e "
        f"ON e.{q('task_id')} = t.{q('id')}"
    )
    facts = ", ".join(
        [f"t.{q(name)}" for name in LIVE_TASK_FACTS]
        + [f"e.{q(name)}" for name in LIVE_ENVIRONMENT_FACTS]
    )
    # The messages' mark (messages_mark): a few rows of one task, read by its (task, seq) index.
    messages = (
        "(SELECT CASE WHEN COUNT(*) = 0 THEN '' ELSE COUNT(*) || '-' || "  # noqa: S608
        f"COUNT(m.{q('delivered_at')}) || '-' || COUNT(CASE WHEN m.{q('late')} THEN 1 END) END "
        f"FROM {q(TaskMessage._meta.db_table)} m WHERE m.{q('task_id')} = t.{q('id')})"
    )
    # Only quoted table and column names are formatted in; every value is a parameter.
    return (
        f"SELECT t.{q('status')}, t.{q('cancel_requested')}, t.{q('wait_reason')}, "  # noqa: S608
        f"COALESCE({written}, 0), CASE WHEN t.{q('status')} = %s AND {written} > %s "
        f"AND {written} <= %s THEN {tail} ELSE '' END, {messages}, {facts} "
        f"FROM {tables} WHERE t.{q('id')} = %s AND t.{q('owner_id')} = %s"
    )
