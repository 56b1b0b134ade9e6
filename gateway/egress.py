"""The gateway's egress policy: the agents' rules (common.netpolicy, the one home of the egress
rules) plus what only the gateway knows, the model API's host, which a tunnel never reaches:
the model is reached through the gateway's API route, which swaps the placeholder for the real
credential; a tunnel would carry only the placeholder, or let a stolen credential be used from
inside.

The names re-exported below are those this module has always offered.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from common.netpolicy import (
    DEFAULT_EGRESS_ALLOW,
    EgressDecision,
    EgressPolicy,
    EgressRule,
    IPAddress,
    Resolver,
    address_is_forbidden,
    egress_addresses_check,
    egress_check,
    egress_name_check,
    egress_policy_for_agents,
    egress_resolve_check,
    egress_rule_parse,
    egress_rules_parse,
    host_literal_is_forbidden,
    host_normalize,
    loopback_allowances_parse,
)

__all__ = [
    "DEFAULT_EGRESS_ALLOW",
    "EgressDecision",
    "EgressPolicy",
    "EgressRule",
    "IPAddress",
    "Resolver",
    "address_is_forbidden",
    "egress_addresses_check",
    "egress_check",
    "egress_name_check",
    "egress_policy_from_settings",
    "egress_resolve_check",
    "egress_rule_parse",
    "egress_rules_parse",
    "host_literal_is_forbidden",
    "loopback_allowances_parse",
]


def egress_policy_from_settings() -> EgressPolicy:
    """The agents' policy from the settings, with ANTHROPIC_API_URL's host refused for tunnels."""
    from django.conf import settings

    api = urlsplit(settings.ANTHROPIC_API_URL)
    return replace(
        egress_policy_for_agents(),
        api_host=host_normalize(api.hostname or ""),
        api_port=api.port or (443 if api.scheme == "https" else 80),
    )
