"""Whether the worker may connect to a git host, and to which addresses: the agents' egress
rules (common.netpolicy: the allow-list AGENT_EGRESS_ALLOW, and the special-purpose and metadata
addresses always refused) applied to the worker's own clone and push.

The caller pins git to the addresses returned here (curl's resolve list), so a DNS answer that
changes between this check and the connection gains nothing.
"""

from common.netpolicy import egress_check, egress_policy_for_agents

from .errors import HostingError, Refusal

# The egress check's reason for a name without an address.
UNRESOLVED_REASON = "the name does not resolve"


def unresolved_message(host: str) -> str:
    return f"{host} could not be resolved from this server: no DNS or network?"


def git_host_addresses(*, host: str, port: int) -> tuple[str, ...]:
    """The checked addresses of host:port, or HostingError: UNREACHABLE when the name does not
    resolve, EGRESS_REFUSED (with the reason) when the rules refuse it."""
    decision = egress_check(host=host, port=port, policy=egress_policy_for_agents())
    if not decision.allowed and decision.reason == UNRESOLVED_REASON:
        # An allowed host: allowing it again would not help, the server's DNS or network might.
        raise HostingError(Refusal.UNREACHABLE, unresolved_message(host))
    if not decision.allowed:
        raise HostingError(
            Refusal.EGRESS_REFUSED,
            f"This server may not connect to {host}:{port} ({decision.reason}). If it is a "
            "public git host, ask the operator to allow it (AGENT_EGRESS_ALLOW).",
        )
    return decision.addresses
