"""Where a follow-up starts: its parent's result. On the parent's pull-request branch when it
has one (that branch holds the parent's commits, and pushing onto it updates the pull request);
otherwise at the commit the chain was first cloned at, with each earlier task's commits (its git
bundle) read in on top, oldest first."""

from dataclasses import dataclass, field

from tasks.models import CodingTask, PullRequestState

PULL_REQUEST_DONE = (PullRequestState.OPENED, PullRequestState.PUSHED)


@dataclass(frozen=True)
class ChainStart:
    commit: str  # what to clone: where the first task of the run of bundles started
    bundles: list[bytes] = field(default_factory=list, repr=False)  # oldest first


def starts_on_its_branch(*, task: CodingTask) -> bool:
    """True when cloning the task's branch gives what it starts from: not a follow-up, or one
    on its parent's pull-request branch."""
    parent = task.parent
    if parent is None or parent.owner_id != task.owner_id:
        return True
    pull_request = parent.pull_request
    return bool(
        pull_request.state in PULL_REQUEST_DONE
        and pull_request.branch
        and task.branch == pull_request.branch
    )


def chain_start(*, task: CodingTask) -> ChainStart | None:
    """What a follow-up is cloned at and the earlier commits to read in; None when the task's
    branch is what it starts from."""
    if starts_on_its_branch(task=task):
        return None
    bundles: list[bytes] = []
    seen = {task.pk}
    current = task.parent
    while current is not None and current.pk not in seen:
        seen.add(current.pk)
        pull_request = current.pull_request
        if pull_request.bundle:
            bundles.insert(0, bytes(pull_request.bundle))
        if starts_on_its_branch(task=current):
            if not pull_request.start_commit:
                return None  # it never cloned: start where it would have
            return ChainStart(pull_request.start_commit, bundles)
        current = current.parent
    return None
