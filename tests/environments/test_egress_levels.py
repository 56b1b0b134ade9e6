"""Each phase's network level as the gateway applies it (common.netpolicy decides)."""

import pytest
from django.conf import settings as conf
from django.contrib.auth import get_user_model

from common.errors import InputError
from common.netpolicy import egress_name_check
from environments.egress import egress_policy_for_level, environment_egress_policy
from environments.models import Environment
from environments.services import EnvironmentInput, environment_save


def _allowed(level: str, host: str, allow: list[str] | None = None) -> bool:
    policy = egress_policy_for_level(level=level, allow=allow or [])
    return egress_name_check(host=host, port=443, policy=policy) is None


@pytest.fixture(autouse=True)
def _lists(settings):
    settings.AGENT_PACKAGE_REGISTRIES = ["pypi.org", "files.pythonhosted.org", "registry.npmjs.org"]
    settings.AGENT_EGRESS_ALLOW = ["github.com"]


def test_none_reaches_nothing():
    assert not _allowed("none", "pypi.org")
    assert not _allowed("none", "github.com")


def test_registries_reach_the_registries_only():
    assert _allowed("registries", "pypi.org")
    assert _allowed("registries", "registry.npmjs.org")
    assert not _allowed("registries", "github.com")
    assert not _allowed("registries", "evil.example")


def test_agents_is_the_servers_allow_list():
    assert _allowed("agents", "github.com")
    assert not _allowed("agents", "pypi.org")


def test_custom_is_its_own_list_and_never_a_forbidden_address():
    assert _allowed("custom", "proxy.golang.org", ["proxy.golang.org"])
    assert not _allowed("custom", "github.com", ["proxy.golang.org"])
    assert not _allowed("custom", "169.254.169.254", ["*"])
    assert not _allowed("custom", "localhost", ["*"])


def _custom(owner, allow: str) -> Environment:
    data = EnvironmentInput(
        name="env", image=conf.AGENT_IMAGE, agent_egress="custom", agent_allow=allow
    )
    return environment_save(owner=owner, data=data)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "allow", ["*", "*.com.example", "evil.example", "*.github.com", "github.com\n*"]
)
def test_a_user_cannot_widen_the_agents_network_beyond_the_servers_allow_list(user, allow):
    """README: the agent reaches hosts on AGENT_EGRESS_ALLOW; a user's custom list narrows it."""
    with pytest.raises(InputError) as refused:
        _custom(user, allow)
    assert refused.value.field == "agent_allow"
    assert "AGENT_EGRESS_ALLOW: github.com" in refused.value.message
    assert not Environment.objects.exists()


@pytest.mark.django_db
def test_a_users_custom_list_within_the_servers_and_an_admins_wider_one_are_kept(user):
    assert _custom(user, "github.com:443").agent_allow == ["github.com:443"]
    admin = get_user_model().objects.create_user("boss", password="pw-boss-123", is_staff=True)
    assert _custom(admin, "*").agent_allow == ["*"]


@pytest.mark.django_db
def test_a_users_saved_custom_list_reaches_only_what_the_server_allows_today(user, settings):
    environment = Environment.objects.create(
        owner=user, name="old", image="i", agent_egress="custom", agent_allow=["*", "github.com"]
    )  # saved before the rule, or before the server's list shrank

    def reaches(host: str) -> bool:
        policy = environment_egress_policy(environment=environment, phase="agent")
        return egress_name_check(host=host, port=443, policy=policy) is None

    assert reaches("github.com")
    assert not reaches("evil.example")
    settings.AGENT_EGRESS_ALLOW = ["pypi.org"]
    assert not reaches("github.com")
    user.is_staff = True
    user.save()
    environment.owner.refresh_from_db()
    assert reaches("evil.example")  # an admin's own list may be wider
