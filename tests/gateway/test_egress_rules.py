"""The gateway's own part of the egress policy (gateway/egress.py: the model API's host) and the
settings that feed the policy, checked when the settings load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.egress import egress_policy_from_settings

ROOT = Path(__file__).resolve().parent.parent.parent


def _settings_load(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_DEBUG": "true",
            "PYTHONPATH": str(ROOT),
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.deploy  # fresh app processes
def test_settings_refuse_an_over_broad_allow_list() -> None:
    result = _settings_load(AGENT_EGRESS_ALLOW="github.com,*.com")
    assert result.returncode != 0
    assert "AGENT_EGRESS_ALLOW: '*.com' is too broad" in result.stderr


@pytest.mark.deploy  # fresh app processes
def test_settings_refuse_the_test_loopback_allowance_outside_tests() -> None:
    result = _settings_load(AGENT_EGRESS_TEST_ALLOW_LOOPBACK="127.0.0.1:8765")
    assert result.returncode != 0
    assert "AGENT_EGRESS_TEST_ALLOW_LOOPBACK is for the test suite only" in result.stderr
    assert _settings_load().returncode == 0, _settings_load().stderr


def test_the_test_loopback_allowance_is_ignored_unless_testing(settings) -> None:
    settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = ["127.0.0.1:8765"]
    assert egress_policy_from_settings().test_loopback == {("127.0.0.1", 8765)}
    settings.TESTING = False
    assert egress_policy_from_settings().test_loopback == frozenset()


def test_the_gateway_policy_refuses_the_model_api_host(settings) -> None:
    settings.ANTHROPIC_API_URL = "https://API.Anthropic.com"
    settings.AGENT_EGRESS_ALLOW = ["*"]
    policy = egress_policy_from_settings()
    assert (policy.api_host, policy.api_port) == ("api.anthropic.com", 443)
    assert [str(rule) for rule in policy.rules] == ["*"]
    settings.ANTHROPIC_API_URL = "http://127.0.0.1:8123"
    assert (egress_policy_from_settings().api_host, egress_policy_from_settings().api_port) == (
        "127.0.0.1",
        8123,
    )
