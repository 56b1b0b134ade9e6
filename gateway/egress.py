"""The gateway's own part of the egress policy: the agents' rules (common.netpolicy, the one home
of the egress rules) plus what only the gateway knows, the model API's host, which a tunnel never
reaches. The model is reached through the gateway's API route, which swaps the placeholder for
the real credential; a tunnel would carry only the placeholder, or let a stolen credential be
used from inside.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from django.conf import settings

from common.netpolicy import EgressPolicy, egress_policy_for_agents, host_normalize


def egress_policy_from_settings() -> EgressPolicy:
    """The agents' policy from the settings, with ANTHROPIC_API_URL's host refused for tunnels."""
    return egress_policy_with_api(egress_policy_for_agents())


def egress_policy_with_api(policy: EgressPolicy) -> EgressPolicy:
    """Any policy a gateway applies (an environment's phases have their own), with
    ANTHROPIC_API_URL's host refused for tunnels."""
    api = urlsplit(settings.ANTHROPIC_API_URL)
    return replace(
        policy,
        api_host=host_normalize(api.hostname or ""),
        api_port=api.port or (443 if api.scheme == "https" else 80),
    )
