from dataclasses import dataclass
from enum import StrEnum

from django.contrib.auth.models import User
from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Right
from django.http import Http404
from django.shortcuts import get_object_or_404

from .models import FINISHED_STATUSES, CodingTask, live_state_token

# Beyond this much new log a poll draws the whole live part again instead of sending a tail.
LIVE_TAIL_MAX_CHARS = 64 * 1024


def tasks_for_user(*, user: User) -> QuerySet[CodingTask]:
    return CodingTask.objects.filter(owner=user).defer("log", "diff")


def task_get_for_user(*, user: User, task_id: int) -> CodingTask:
    """The user's own task; another user's task is a 404, as if it did not exist."""
    return get_object_or_404(
        CodingTask.objects.select_related("usage", "limit", "pull_request", "log_progress"),
        pk=task_id,
        owner=user,
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
    its log: one query of a few columns (the log's new tail only when there is one, read with
    its count so a flush cannot split them), no template. Another user's task is a 404."""
    written = F("log_progress__chars_written")
    # Only a tail the page can use: same status, some new log, not too much.
    grown = Q(
        status=state.partition(".")[0],
        log_progress__chars_written__gt=since,
        log_progress__chars_written__lte=since + LIVE_TAIL_MAX_CHARS,
    )
    tail = Right("log", Cast(written - since, IntegerField()))
    row = (
        CodingTask.objects.filter(pk=task_id, owner=user)
        .values(
            "status",
            "cancel_requested",
            "wait_reason",
            written=written,
            tail=Case(When(grown, then=tail), default=Value("")),
        )
        .first()
    )
    if row is None:
        raise Http404("No such task.")
    if row["status"] in FINISHED_STATUSES:
        return LivePoll(LiveChange.FINISHED)
    now_state = live_state_token(
        status=row["status"],
        cancel_requested=row["cancel_requested"],
        wait_reason=row["wait_reason"],
    )
    count = row["written"] or 0
    if now_state == state and count == since:
        return LivePoll(LiveChange.NOTHING)
    # A page that shows no log yet ("nothing yet") gets the whole part, as does a stale one;
    # so does one whose log lost its start meanwhile (a new run's log, or one cut).
    if now_state != state or since <= 0 or len(row["tail"]) != count - since:
        return LivePoll(LiveChange.ALL)
    return LivePoll(LiveChange.LOG, state=now_state, tail=row["tail"], since=count)
