"""What an environment's setup may do, decided from what the task's checkout really holds (not
from branch names): the setup secrets go only to a setup that runs on the repository's own
commits, and only a setup on the unmodified remote commit of the base branch writes the
snapshot every later task on that branch starts from (README "Environments").

A follow-up's checkout holds an earlier task's work (its commits read in from their bundles,
or its pull-request branch): whatever its setup runs there (a package.json script, a
devcontainer.json command) may be the earlier agent's, so it runs without the secrets, reaches
no host the agent may not reach, and its home stays the follow-up's own."""

from dataclasses import dataclass

from .workspace import Workspace


@dataclass(frozen=True)
class SetupRights:
    # The environment's setup secrets go into the setup container; without them, the setup
    # reaches no host the agent may not reach either (tasks.run.setup).
    secrets: bool
    snapshot: bool  # a fresh setup's home becomes the cached snapshot of the base branch
    why_not: str  # why not, in words that follow "Not cached: " ("" when both hold)


def setup_rights(*, workspace: Workspace) -> SetupRights:
    """What the setup on ``workspace`` may have and write."""
    if workspace.continues_task:
        return SetupRights(
            secrets=False,
            snapshot=False,
            why_not="the task continues an earlier one, whose agent's commits its checkout holds",
        )
    if not workspace.remote_commit or workspace.start_commit != workspace.remote_commit:
        return SetupRights(
            secrets=False,
            snapshot=False,
            why_not="the checkout is not a commit as fetched from the repository",
        )
    if workspace.remote_branch != workspace.base_branch:
        # The repository's own commits, but not the branch the snapshot would be found for.
        return SetupRights(
            secrets=True,
            snapshot=False,
            why_not=(
                f"the task starts from {workspace.remote_branch}, not its base branch "
                f"{workspace.base_branch}"
            ),
        )
    return SetupRights(secrets=True, snapshot=True, why_not="")
