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
    """Every uid tried in AGENT_UID_RANGE belongs to an account or a group on this host."""


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
    if settings.AGENT_UID_RANGE is None:
        return AGENT_UID
    first, last = settings.AGENT_UID_RANGE
    size = last - first + 1
    for step in range(min(size, _TRIES)):
        uid = first + (task_id + step) % size
        if not _taken(uid):
            return uid
    raise AgentUserUnavailable(
        f"No free uid in AGENT_UID_RANGE ({first}-{last}): host accounts or groups use them. "
        "Choose a range no account uses; the task was not run."
    )
