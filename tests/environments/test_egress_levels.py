"""Each phase's network level as the gateway applies it (common.netpolicy decides)."""

import pytest

from common.netpolicy import egress_name_check
from environments.egress import egress_policy_for_level


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
