"""Which host uid (and gid) a task's container runs as: one from AGENT_UID_RANGE that no host
account or group has, different for tasks that run at the same time. No local user then shares
the agent's uid, so none can read its processes' environment (the placeholder is there) nor,
with the socket handed to that uid alone (tasks.run.gateway), spend the task's credential."""

import grp
import pwd

from django.conf import settings

from .containers import AGENT_UID

# How far past a taken uid to look for a free one before giving up.
_TRIES = 1000


class AgentUserUnavailable(Exception):
    """AGENT_UID_RANGE is not first-last, or every uid tried belongs to a host account."""


def agent_uid_range() -> tuple[int, int] | None:
    """AGENT_UID_RANGE as (first, last); None when empty (the image's own uid)."""
    text = settings.AGENT_UID_RANGE.strip()
    if not text:
        return None
    first, _, last = text.partition("-")
    if all(part.strip().isascii() and part.strip().isdecimal() for part in (first, last)):
        found = int(first), int(last)
        if 1000 < found[0] <= found[1] < 2**31 - 1:
            return found
    raise AgentUserUnavailable(
        f"AGENT_UID_RANGE ({text[:40]!r}) is not first-last with 1000 < first <= last < "
        "2147483647, e.g. 200000-265535; the task was not run."
    )


def _taken(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        pass
    else:
        return True
    try:
        grp.getgrgid(uid)
    except KeyError:
        return False
    return True


def agent_uid_for_task(*, task_id: int) -> int:
    """The task's uid: its id's place in the range (tasks next to each other get different
    uids), skipping any the host uses; the image's own uid when no range is set."""
    found = agent_uid_range()
    if found is None:
        return AGENT_UID
    first, last = found
    size = last - first + 1
    for step in range(min(size, _TRIES)):
        uid = first + (task_id + step) % size
        if not _taken(uid):
            return uid
    raise AgentUserUnavailable(
        f"No free uid in AGENT_UID_RANGE ({first}-{last}): host accounts or groups use them. "
        "Choose a range no account uses; the task was not run."
    )
