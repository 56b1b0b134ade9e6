"""The policies this server's settings describe (settings already refused malformed values).

Django is imported inside the functions: the rest of the package is plain Python, which the
settings module itself imports to check AGENT_EGRESS_ALLOW.
"""

from __future__ import annotations

from .decision import EgressPolicy
from .rules import egress_rules_parse, loopback_allowances_parse


def loopback_allowances_from_settings() -> frozenset[tuple[str, int]]:
    """``AGENT_EGRESS_TEST_ALLOW_LOOPBACK``, honoured under the test settings only."""
    from django.conf import settings  # read when called; see the module's docstring

    if not getattr(settings, "TESTING", False):
        return frozenset()
    return loopback_allowances_parse(settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK)


def egress_policy_for_agents() -> EgressPolicy:
    """Where agents may connect, and the worker's git on their behalf: ``AGENT_EGRESS_ALLOW``."""
    from django.conf import settings  # read when called; see the module's docstring

    return EgressPolicy(
        rules=egress_rules_parse(settings.AGENT_EGRESS_ALLOW),
        test_loopback=loopback_allowances_from_settings(),
    )


def egress_policy_any_public() -> EgressPolicy:
    """Any public host (a user's webhook): only the address classes apply."""
    return EgressPolicy(
        rules=(), any_public=True, test_loopback=loopback_allowances_from_settings()
    )
