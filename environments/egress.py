"""Where each phase of a task with an environment may connect: one of the egress levels, as an
EgressPolicy (common.netpolicy: the same rules and address checks as every other policy)."""

from django.conf import settings

from common.netpolicy import (
    EgressPolicy,
    egress_policy_for_agents,
    egress_rule_within,
    egress_rules_parse,
    loopback_allowances_from_settings,
)

from .models import EgressLevel, Environment


def egress_policy_for_level(*, level: str, allow: list[str]) -> EgressPolicy:
    """The policy of a level: nothing at all, the package registries, the agents' allow list
    (AGENT_EGRESS_ALLOW) or a custom list. The test suite's loopback allowance applies to all
    but "none"."""
    if level == EgressLevel.NONE:
        return EgressPolicy(rules=())
    if level == EgressLevel.AGENTS:
        return egress_policy_for_agents()
    hosts = settings.AGENT_PACKAGE_REGISTRIES if level == EgressLevel.REGISTRIES else allow
    return EgressPolicy(
        rules=egress_rules_parse(list(hosts)), test_loopback=loopback_allowances_from_settings()
    )


def agent_allow_outside(*, entries: list[str]) -> list[str]:
    """The entries of a custom list for the agent that reach beyond the server's allow list for
    agents (AGENT_EGRESS_ALLOW): only an admin may widen it."""
    bounds = egress_rules_parse(settings.AGENT_EGRESS_ALLOW)
    return [
        entry
        for entry, rule in zip(entries, egress_rules_parse(entries), strict=True)
        if not egress_rule_within(rule, bounds)
    ]


def environment_egress_policy(*, environment: Environment, phase: str) -> EgressPolicy:
    """phase: "setup" (the setup or maintenance script) or "agent". A non-admin's custom list
    for the agent keeps only what AGENT_EGRESS_ALLOW allows today (the list may have shrunk, or
    the owner stopped being an admin, since it was saved)."""
    if phase == "setup":
        return egress_policy_for_level(
            level=environment.setup_egress, allow=environment.setup_allow
        )
    allow = list(environment.agent_allow)
    if environment.agent_egress == EgressLevel.CUSTOM and not environment.owner.is_staff:
        outside = set(agent_allow_outside(entries=allow))
        allow = [entry for entry in allow if entry not in outside]
    return egress_policy_for_level(level=environment.agent_egress, allow=allow)
