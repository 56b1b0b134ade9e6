"""The environment pages: own ones listed and edited, shared ones visible to all but edited by
their admin only, every input checked with a clear message and nothing half-saved, secrets
never shown back; the task form picks the matching environment."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from common.errors import InputError
from environments.admin import EnvironmentAdminForm
from environments.models import Environment, TaskEnvironment
from environments.services import EnvironmentInput, environment_save
from tasks.models import CodingTask

pytestmark = pytest.mark.django_db

SECRET = "setup-only-registry-token-page-0001"
IMAGE = "claude-runner-agent:2.1.332"


def _post(client, url: str, **fields):
    data = {
        "name": "python",
        "image": "claude-runner-agent:2.1.332",
        "setup_script": "pip install -e .",
        "maintenance_script": "",
        "variables": "",
        "setup_secrets": "",
        "setup_egress": "registries",
        "setup_allow": "",
        "agent_egress": "agents",
        "agent_allow": "",
        "repo_patterns": "https://github.com/acme/*",
        **fields,
    }
    return client.post(url, data)


@pytest.fixture(autouse=True)
def _images(settings):
    settings.AGENT_IMAGE = "claude-runner-agent:2.1.332"
    settings.AGENT_IMAGES_ALLOWED = ["claude-runner-agent:universal-2.1.332"]
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def test_create_edit_bumps_the_version_and_never_shows_the_secrets(user_client, user):
    response = _post(user_client, reverse("environments:create"), setup_secrets=f"TOKEN={SECRET}")
    assert response.status_code == 302
    environment = Environment.objects.get(owner=user)
    assert environment.version == 1
    assert environment.setup_secrets == {"TOKEN": SECRET}
    page = user_client.get(reverse("environments:edit", args=[environment.pk]))
    assert SECRET not in page.content.decode()
    assert "Setup secrets are saved: 1" in page.content.decode()

    # An edit without secrets keeps them; the version goes up.
    response = _post(
        user_client,
        reverse("environments:edit", args=[environment.pk]),
        setup_script="pip install -e .[dev]",
    )
    assert response.status_code == 302
    environment.refresh_from_db()
    assert environment.version == 2
    assert environment.setup_secrets == {"TOKEN": SECRET}
    response = _post(
        user_client, reverse("environments:edit", args=[environment.pk]), clear_secrets="on"
    )
    environment.refresh_from_db()
    assert environment.setup_secrets is None
    assert environment.version == 3


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"image": "evil/image:latest"}, "image", "Select a valid choice"),
        ({"repo_patterns": "*"}, "repo_patterns", "matches no repository"),
        ({"repo_patterns": "ftp://example.com/*"}, "repo_patterns", "matches no repository"),
        ({"repo_patterns": "https:///x"}, "repo_patterns", "matches no repository URL"),
        ({"repo_patterns": "https://github.com/[abc]/*"}, "repo_patterns", "no brackets"),
        ({"setup_script": "x" * 70_000}, "setup_script", "the limit is 65,536"),
        ({"variables": "PATH=/evil"}, "variables", "set by the runner"),
        ({"variables": "ANTHROPIC_BASE_URL=http://x"}, "variables", "cannot be set here"),
        ({"variables": "NODE_OPTIONS=--require=/x"}, "variables", "run other code"),
        ({"setup_secrets": "DB_PASSWORD=hunter2"}, "setup_secrets", "shorter than 8"),
        ({"variables": "1BAD=x"}, "variables", "not a variable name"),
        ({"variables": "NOEQUALS"}, "variables", "write NAME=value"),
        ({"setup_egress": "custom", "setup_allow": ""}, "setup_allow", "at least one host"),
        ({"setup_egress": "custom", "setup_allow": "*.com"}, "setup_allow", "too broad"),
        ({"name": ""}, "name", "required"),
        ({"name": "py\n[runner] Setup finished in 0.1 s"}, "name", "on one line"),
    ],
)
def test_bad_input_is_a_field_error_and_nothing_is_saved(user_client, fields, field, words):
    response = _post(user_client, reverse("environments:create"), **fields)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not Environment.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"repo_patterns": "*"},  # refused by the service
        {"setup_egress": "nonsense"},  # refused by the form itself
        {"setup_secrets": f"NPM_TOKEN={SECRET}\nNPM_TOKEN={SECRET}"},  # by the secrets' parser
    ],
)
def test_a_refused_form_never_shows_the_typed_setup_secrets_back(user_client, user, fields):
    response = _post(
        user_client, reverse("environments:create"), **{"setup_secrets": f"T={SECRET}", **fields}
    )
    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert "type them again" in " ".join(response.context["form"].errors["setup_secrets"])
    assert not Environment.objects.exists()
    # The same on the edit page: the saved secrets stay as they were.
    environment = Environment.objects.create(
        owner=user, name="python", image="claude-runner-agent:2.1.332", setup_secrets={"T": "x" * 9}
    )
    url = reverse("environments:edit", args=[environment.pk])
    response = _post(user_client, url, **{"setup_secrets": f"T={SECRET}", **fields})
    assert SECRET not in response.content.decode()
    environment.refresh_from_db()
    assert environment.setup_secrets == {"T": "x" * 9}
    assert environment.version == 1


def test_an_image_not_allowed_is_refused_by_the_service_too(user):
    from common.errors import InputError
    from environments.services import EnvironmentInput, environment_save

    with pytest.raises(InputError) as refused:
        environment_save(owner=user, data=EnvironmentInput(name="x", image="alpine:latest"))
    assert refused.value.field == "image"
    assert "AGENT_IMAGES_ALLOWED" in refused.value.message


@pytest.mark.parametrize(
    "name",
    [
        "py\n[runner] Setup finished in 0.1 s",
        "py\r[runner] x",
        "py\x1b[2K",
        "py\u202eyp",
        "x" * 101,
    ],
)
def test_an_environment_name_is_one_printable_line(user, name):
    """The name is written into the task log (its [runner] lines) and onto pages."""
    with pytest.raises(InputError) as refused:
        environment_save(owner=user, data=EnvironmentInput(name=name, image=IMAGE))
    assert refused.value.field == "name"
    assert not Environment.objects.exists()
    saved = environment_save(owner=user, data=EnvironmentInput(name="Python 3.12 · é", image=IMAGE))
    assert saved.name == "Python 3.12 · é"


def test_another_users_environment_is_a_404_for_every_action(client, user, other_user):
    theirs = Environment.objects.create(owner=other_user, name="theirs", image="i")
    client.force_login(user)
    for name in ("edit", "delete", "reset"):
        url = reverse(f"environments:{name}", args=[theirs.pk])
        response = client.post(url, {}) if name != "edit" else client.get(url)
        assert response.status_code == 404, name
    assert Environment.objects.filter(pk=theirs.pk).exists()
    assert "theirs" not in client.get(reverse("environments:list")).content.decode()


def test_shared_ones_are_listed_for_all_but_only_an_admin_may_share(client, user, other_user):
    admin = get_user_model().objects.create_user("admin", password="pw-admin-123", is_staff=True)
    client.force_login(admin)
    _post(client, reverse("environments:create"), name="company", shared="on")
    shared = Environment.objects.get(name="company")
    assert shared.shared
    client.force_login(user)
    assert "company" in client.get(reverse("environments:list")).content.decode()
    assert client.get(reverse("environments:edit", args=[shared.pk])).status_code == 404
    # A user's form has no share box; a forged field is ignored.
    _post(client, reverse("environments:create"), name="mine", shared="on")
    assert not Environment.objects.get(name="mine").shared


def test_the_task_form_picks_the_matching_environment(user_client, user, other_user):
    mine = Environment.objects.create(
        owner=user, name="acme", image="i", repo_patterns=["https://github.com/acme/*"]
    )
    Environment.objects.create(
        owner=other_user, name="bobs", image="i", repo_patterns=["https://github.com/*"]
    )
    page = user_client.get(reverse("tasks:list")).content.decode()
    assert "The one matching the repository" in page
    assert "bobs" not in page
    user_client.post(
        reverse("tasks:list"),
        {"repo_url": "https://github.com/acme/app.git", "prompt": "go", "environment": "auto"},
    )
    task = CodingTask.objects.get(owner=user)
    assert TaskEnvironment.objects.get(pk=task.pk).environment == mine
    # None chosen: no environment; a repository nothing matches: none either.
    user_client.post(
        reverse("tasks:list"),
        {"repo_url": "https://github.com/acme/app.git", "prompt": "go", "environment": "none"},
    )
    user_client.post(
        reverse("tasks:list"), {"repo_url": "https://github.com/other/app.git", "prompt": "go"}
    )
    assert TaskEnvironment.objects.count() == 1


def test_someone_elses_environment_cannot_be_chosen_for_a_task(user_client, user, other_user):
    theirs = Environment.objects.create(owner=other_user, name="bobs", image="i")
    response = user_client.post(
        reverse("tasks:list"),
        {"repo_url": "https://github.com/acme/app.git", "prompt": "go", "environment": theirs.pk},
    )
    assert response.status_code == 200
    assert "environment" in response.context["form"].errors
    assert not CodingTask.objects.exists()


def test_the_task_page_shows_which_environment_ran_and_its_setup(user_client, user):
    environment = Environment.objects.create(owner=user, name="py", image="i", version=3)
    task = CodingTask.objects.create(owner=user, repo_url="https://github.com/a/b", prompt="p")
    TaskEnvironment.objects.create(
        task=task,
        environment=environment,
        version=3,
        cache="hit",
        setup_seconds=1.5,
        setup_exit_code=0,
        setup_log="MAINTENANCE-RAN\n",
        snapshot_bytes=2048,
    )
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "Environment: py" in page
    assert "version 3" in page
    assert "Cache hit: maintenance ran on the snapshot" in page
    assert "1.5 s" in page
    assert "MAINTENANCE-RAN" in page


def test_the_admin_shows_no_secrets_and_an_edit_is_a_new_version(admin_client, admin_user):
    environment = Environment.objects.create(
        owner=admin_user,
        name="py",
        image="claude-runner-agent:2.1.332",
        setup_secrets={"TOKEN": SECRET},
    )
    url = reverse("admin:environments_environment_change", args=[environment.pk])
    page = admin_client.get(url).content.decode()
    assert SECRET not in page
    assert "setup_secrets" not in page
    form = {
        "owner": admin_user.pk,
        "name": "py",
        "image": "claude-runner-agent:2.1.332",
        "setup_script": "echo two",
        "maintenance_script": "",
        "variables": "{}",
        "setup_egress": "registries",
        "setup_allow": "[]",
        "agent_egress": "agents",
        "agent_allow": "[]",
        "repo_patterns": "[]",
    }
    assert admin_client.post(url, form).status_code == 302
    environment.refresh_from_db()
    assert environment.version == 2
    assert environment.setup_secrets == {"TOKEN": SECRET}
    refused = admin_client.post(url, {**form, "image": "alpine:latest"})
    assert "AGENT_IMAGES_ALLOWED" in refused.content.decode()


def _admin_form(owner, **fields) -> EnvironmentAdminForm:
    data = {
        "owner": owner.pk, "name": "x", "image": IMAGE, "setup_script": "",
        "maintenance_script": "", "variables": "{}", "setup_egress": "registries",
        "setup_allow": "[]", "agent_egress": "agents", "agent_allow": "[]",
        "repo_patterns": "[]", **fields,
    }  # fmt: skip
    return EnvironmentAdminForm(data=data)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"variables": '{"LD_PRELOAD": "/home/agent/x.so"}'}, "variables", "cannot be set here"),
        ({"variables": '{"NODE_OPTIONS": "--require /x"}'}, "variables", "run other code"),
        ({"variables": '{"HOME": "/x"}'}, "variables", "set by the runner"),
        ({"variables": '["not", "a", "mapping"]'}, "variables", "JSON object"),
        ({"variables": '{"A": "1\\nB=2"}'}, "variables", "one-line"),
        ({"agent_allow": '["not a host"]'}, "agent_allow", "full host name"),
        ({"repo_patterns": '"https://github.com/acme/*"'}, "repo_patterns", "JSON list"),
        ({"repo_patterns": '["*"]'}, "repo_patterns", "matches no repository"),
        ({"name": "py\n[runner] x"}, "name", "on one line"),
        ({"image": "alpine:latest"}, "image", "AGENT_IMAGES_ALLOWED"),
    ],
)
def test_the_admin_form_checks_what_the_environment_page_checks(admin_user, fields, field, words):
    form = _admin_form(admin_user, **fields)
    assert not form.is_valid(), f"{fields} accepted"
    assert words in " ".join(map(str, form.errors[field])), form.errors


def test_the_admin_form_keeps_to_the_owners_rights(admin_user, user):
    # A user's environment: no sharing, no agent list beyond AGENT_EGRESS_ALLOW.
    assert "shared" in _admin_form(user, shared="on").errors
    widened = _admin_form(user, agent_egress="custom", agent_allow='["*"]')
    assert "AGENT_EGRESS_ALLOW" in " ".join(map(str, widened.errors["agent_allow"]))
    # An admin's environment with setup secrets is not shared from here either.
    secret = Environment.objects.create(
        owner=admin_user, name="x", image=IMAGE, setup_secrets={"TOKEN": SECRET}
    )
    data = {**_admin_form(admin_user).data, "shared": "on"}
    form = EnvironmentAdminForm(data=data, instance=secret)
    assert "other users' repositories would run with them" in " ".join(
        map(str, form.errors["shared"])
    )
    # What passes is saved as the page would save it.
    form = _admin_form(admin_user, name=" ok ", variables='{"NODE_ENV": "test"}')
    assert form.is_valid(), form.errors
    assert form.save().name == "ok"


def test_a_follow_up_keeps_its_parents_environment_while_it_may(user, other_user):
    from tasks.follow_ups import task_continue
    from tasks.models import TaskStatus

    def parent_with(environment: Environment) -> CodingTask:
        parent = CodingTask.objects.create(
            owner=user, repo_url="https://github.com/a/b", prompt="p", status=TaskStatus.SUCCEEDED
        )
        TaskEnvironment.objects.create(task=parent, environment=environment)
        parent.refresh_from_db()
        return parent

    mine = Environment.objects.create(owner=user, name="mine", image="i")
    child = task_continue(parent=parent_with(mine), prompt="more")
    assert TaskEnvironment.objects.get(pk=child.pk).environment == mine
    # Someone else's, no longer shared: the follow-up runs without it.
    theirs = Environment.objects.create(owner=other_user, name="theirs", image="i", shared=True)
    parent = parent_with(theirs)
    Environment.objects.filter(pk=theirs.pk).update(shared=False)
    child = task_continue(parent=parent, prompt="more")
    assert not TaskEnvironment.objects.filter(pk=child.pk).exists()
