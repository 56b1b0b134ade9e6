"""An admin's shared environment runs every user's repository code in its setup (package
scripts, devcontainer.json), so it holds no setup secrets; and a secret saved on one before that
rule goes to its owner's tasks only."""

import subprocess

import pytest
from django.urls import reverse

from common.errors import InputError
from environments.models import Environment
from environments.selectors import environment_secrets_for
from environments.services import EnvironmentInput, environment_save
from tasks.results import RunResult
from tasks.run.log import TaskLog
from tasks.run.setup import _plan
from tasks.run.workspace import workspace_clone, workspace_remove
from tasks.services import task_submit
from tests.environments.conftest import PLAN_IMAGE as IMAGE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("plan_settings")]

SECRET = "setup-only-registry-token-shared-0001"
WHY = "other users' repositories would run with them"


def _save(owner, environment=None, **fields) -> Environment:
    data = EnvironmentInput(**{"name": "company", "image": IMAGE, **fields})
    return environment_save(owner=owner, data=data, environment=environment)


def test_a_shared_environment_refuses_setup_secrets(admin):
    with pytest.raises(InputError) as refused:
        _save(admin, shared=True, setup_secrets=f"NPM_TOKEN={SECRET}")
    assert refused.value.field == "setup_secrets"
    assert WHY in refused.value.message
    assert SECRET not in refused.value.message
    assert not Environment.objects.exists()
    # Nor are they added to one already shared.
    shared = _save(admin, shared=True)
    with pytest.raises(InputError) as refused:
        _save(admin, shared, shared=True, setup_secrets=f"NPM_TOKEN={SECRET}")
    assert refused.value.field == "setup_secrets"
    shared.refresh_from_db()
    assert shared.setup_secrets is None
    assert shared.version == 1


def test_an_environment_with_setup_secrets_is_shared_only_once_they_are_removed(admin):
    mine = _save(admin, setup_secrets=f"NPM_TOKEN={SECRET}")
    with pytest.raises(InputError) as refused:
        _save(admin, mine, shared=True)  # the saved secrets are kept
    assert refused.value.field == "shared"
    assert WHY in refused.value.message
    mine.refresh_from_db()
    assert not mine.shared
    assert mine.setup_secrets == {"NPM_TOKEN": SECRET}
    shared = _save(admin, mine, shared=True, clear_secrets=True)
    assert shared.shared
    assert shared.setup_secrets is None


def test_the_page_says_why_it_will_not_share_one_with_secrets(client, admin):
    client.force_login(admin)
    response = client.post(
        reverse("environments:create"),
        {
            "name": "company", "image": IMAGE, "setup_egress": "registries",
            "agent_egress": "agents", "setup_secrets": f"NPM_TOKEN={SECRET}", "shared": "on",
        },
    )  # fmt: skip
    assert response.status_code == 200
    assert WHY in " ".join(response.context["form"].errors["setup_secrets"])
    assert SECRET not in response.content.decode()
    assert not Environment.objects.exists()


def test_an_admins_setup_secrets_never_reach_another_users_repository_code(admin, user):
    # Shared with secrets before that was refused.
    shared = Environment.objects.create(
        owner=admin, name="company", image=IMAGE, shared=True, setup_secrets={"T": SECRET}
    )
    assert environment_secrets_for(environment=shared, user_id=user.pk) == {}
    assert environment_secrets_for(environment=shared, user_id=admin.pk) == {"T": SECRET}
    mine = Environment.objects.create(owner=user, name="mine", image=IMAGE, setup_secrets=None)
    assert environment_secrets_for(environment=mine, user_id=user.pk) == {}


def test_a_users_setup_on_an_admins_shared_environment_runs_without_its_secrets(
    admin, user, tmp_path
):
    """The user's repository's devcontainer.json runs in setup: it must not see the admin's
    secret (one saved before sharing such an environment was refused)."""
    src, bare = tmp_path / "mine", tmp_path / "mine.git"
    (src / ".devcontainer").mkdir(parents=True)
    (src / ".devcontainer" / "devcontainer.json").write_text(
        '{"postCreateCommand": "echo \\"$ADMIN_TOKEN\\" | base64"}'
    )
    git = ["git", "-c", "user.name=u", "-c", "user.email=u@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(src)], check=True)
    subprocess.run([*git, "-C", str(src), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(src), "commit", "-q", "-m", "mine"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True)
    shared = Environment.objects.create(
        owner=admin, name="company", image=IMAGE, shared=True, devcontainer=True,
        setup_secrets={"ADMIN_TOKEN": SECRET},
    )  # fmt: skip
    task = task_submit(
        owner=user, repo_url=f"file://{bare}", prompt="p", environment=str(shared.pk)
    )
    workspace = workspace_clone(task=task).finished()
    try:
        log = TaskLog(task_id=task.pk, secrets=[], max_bytes=10_000)
        plan = _plan(task, shared, workspace, log)
    finally:
        workspace_remove(task_id=task.pk)
    assert not isinstance(plan, RunResult)
    assert "| base64" in plan.script  # the user's repository's command runs in setup
    assert plan.setup_secrets == {}
