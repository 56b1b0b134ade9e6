"""Where this server may connect on someone else's behalf: the one home of the egress rules.

- ``addresses``: address classes that are never reached (the IANA special-purpose registries,
  cloud metadata services), and host literals judged without DNS.
- ``names``: host names as DNS takes them.
- ``rules``: the allow-list (``AGENT_EGRESS_ALLOW``) and its parser.
- ``decision``: the decision for host:port under a policy, sync or async, one core.
- ``urls``: the repository URL and webhook URL parsers.
- ``configured``: the policies the settings describe (agents; any public host for webhooks).

Used by the gateway (an agent's tunnels), hosting (the worker's git), tasks (the form) and
notifications (webhooks); it imports nothing of theirs.
"""

from .addresses import IPAddress, address_is_forbidden, host_literal_is_forbidden, ip_literal
from .configured import (
    egress_policy_any_public,
    egress_policy_for_agents,
    loopback_allowances_from_settings,
)
from .decision import (
    LOOKUP_FAILURES,
    EgressDecision,
    EgressPolicy,
    Resolver,
    SyncResolver,
    egress_addresses_check,
    egress_check,
    egress_name_check,
    egress_policy_within,
    egress_resolve_check,
    system_resolve,
)
from .names import host_name_problem, host_normalize, hostname_valid
from .rules import (
    DEFAULT_EGRESS_ALLOW,
    EgressRule,
    egress_rule_parse,
    egress_rule_within,
    egress_rules_parse,
    loopback_allowances_parse,
)
from .urls import (
    RepositoryUrl,
    UrlRefused,
    WebUrl,
    repository_url_check,
    repository_url_parse,
    web_url_parse,
)

__all__ = [
    "DEFAULT_EGRESS_ALLOW",
    "LOOKUP_FAILURES",
    "EgressDecision",
    "EgressPolicy",
    "EgressRule",
    "IPAddress",
    "RepositoryUrl",
    "Resolver",
    "SyncResolver",
    "UrlRefused",
    "WebUrl",
    "address_is_forbidden",
    "egress_addresses_check",
    "egress_check",
    "egress_name_check",
    "egress_policy_any_public",
    "egress_policy_for_agents",
    "egress_policy_within",
    "egress_resolve_check",
    "egress_rule_parse",
    "egress_rule_within",
    "egress_rules_parse",
    "host_literal_is_forbidden",
    "host_name_problem",
    "host_normalize",
    "hostname_valid",
    "ip_literal",
    "loopback_allowances_from_settings",
    "loopback_allowances_parse",
    "repository_url_check",
    "repository_url_parse",
    "system_resolve",
    "web_url_parse",
]
