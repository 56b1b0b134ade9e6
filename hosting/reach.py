"""Whether the worker may connect to a git host, and to which addresses: the egress rules of
the per-task gateway (gateway.egress) applied to the worker's own clone and push.

The caller pins git to the addresses returned here (curl's resolve list), so a DNS answer that
changes between this check and the connection gains nothing.
"""

from .errors import HostingError, Refusal


def git_host_addresses(*, host: str, port: int) -> tuple[str, ...]:
    """The checked addresses of host:port, or HostingError(EGRESS_REFUSED) with the reason."""
    decision = _egress_check(host=host, port=port)
    if not decision.allowed:
        raise HostingError(
            Refusal.EGRESS_REFUSED,
            f"This server may not connect to {host}:{port} ({decision.reason}). Ask the "
            "operator to allow the host (AGENT_EGRESS_ALLOW) if it is a public git host.",
        )
    return decision.addresses


# --- stand-in until gateway/ is on main (then: from gateway.egress import egress_check) -------

import ipaddress  # noqa: E402
import socket  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from django.conf import settings  # noqa: E402


@dataclass(frozen=True)
class _Decision:
    allowed: bool
    reason: str = ""
    addresses: tuple[str, ...] = ()


def _egress_check(*, host: str, port: int) -> _Decision:
    loopback_ok = bool(getattr(settings, "TESTING", False)) and f"{host}:{port}" in getattr(
        settings, "AGENT_EGRESS_TEST_ALLOW_LOOPBACK", []
    )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return _Decision(False, "the name does not resolve")
    found = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    for text in found:
        address = ipaddress.ip_address(text)
        if address.is_loopback and loopback_ok:
            continue
        if not address.is_global:
            return _Decision(False, f"resolves to a non-public address {text}")
    return _Decision(True, addresses=found)
