"""The egress decision: may a connection to host:port be made, and to which addresses.

Two layers, both always applied: the policy's allow-list on the NAME asked for (or any public
host, for webhooks), and the forbidden address classes (addresses.py) on every RESOLVED
address. The caller connects to an address this module checked and never resolves again, so a
DNS answer that changes between check and connect (rebinding) gains nothing.

One decision, two drivers: ``egress_check`` resolves synchronously (a clone URL, a webhook),
``egress_resolve_check`` with an async resolver (the gateway); both run the same two halves,
``_decision_start`` before the lookup and ``_decision_end`` after it.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

from .addresses import address_is_forbidden, host_literal_is_forbidden, ip_literal
from .names import host_normalize, hostname_valid
from .rules import EgressRule, egress_rule_within

#: async resolver: (host, port) -> the addresses the name stands for, as strings
type Resolver = Callable[[str, int], Awaitable[list[str]]]
#: the same, synchronous
type SyncResolver = Callable[[str, int], list[str]]

# A lookup that fails says OSError (gaierror); a name its IDNA codec cannot encode, UnicodeError.
LOOKUP_FAILURES = (OSError, UnicodeError)


@dataclass(frozen=True)
class EgressPolicy:
    rules: tuple[EgressRule, ...]
    #: the model API (host, port): reached through the gateway's own route, never a tunnel
    api_host: str = ""
    api_port: int = 443
    #: (host, port) pairs allowed on loopback: tests only (settings refuse it elsewhere)
    test_loopback: frozenset[tuple[str, int]] = field(default_factory=frozenset)
    #: every public host and address passes, whatever ``rules`` say (webhooks)
    any_public: bool = False


def egress_policy_within(*, policy: EgressPolicy, bounds: EgressPolicy) -> EgressPolicy:
    """``policy`` cut down to what ``bounds`` allows too: the rules of each that the other
    covers whole (two overlapping wildcards that neither covers are dropped, never widened),
    the loopback allowances of both; a policy the bounds cover whole comes back as it was. Its
    API host stays ``policy``'s."""
    covered = bounds.any_public or (
        not policy.any_public and all(egress_rule_within(r, bounds.rules) for r in policy.rules)
    )
    if covered and policy.test_loopback <= bounds.test_loopback:
        return policy
    if bounds.any_public:
        rules = policy.rules
    elif policy.any_public:
        rules = bounds.rules
    else:
        kept = [rule for rule in policy.rules if egress_rule_within(rule, bounds.rules)]
        kept += [
            rule
            for rule in bounds.rules
            if egress_rule_within(rule, policy.rules) and not egress_rule_within(rule, kept)
        ]
        rules = tuple(dict.fromkeys(kept))
    return replace(
        policy,
        rules=rules,
        test_loopback=policy.test_loopback & bounds.test_loopback,
        any_public=policy.any_public and bounds.any_public,
    )


@dataclass(frozen=True)
class EgressDecision:
    host: str
    port: int
    allowed: bool
    reason: str = ""  # why refused
    addresses: tuple[str, ...] = ()  # checked addresses to connect to, in resolver order

    @property
    def log_line(self) -> str:
        target = f"[{self.host}]" if ":" in self.host else self.host
        return f"egress refused: {target}:{self.port} ({self.reason})"


@dataclass(frozen=True)
class _Lookup:
    name: str
    port: int


def _name_refusal(name: str, port: int, policy: EgressPolicy) -> str | None:
    if not 1 <= port <= 65535:
        return "invalid port"
    address = ip_literal(name)
    if address is None and not hostname_valid(name):
        return "malformed host name"
    if name == policy.api_host and (address is None or port == policy.api_port):
        # A named API host is refused on every port; a literal one (a test fake) on its port.
        return "the model API is reached through the gateway, not a tunnel"
    if (name, port) in policy.test_loopback:
        return None
    literal = host_literal_is_forbidden(name)
    if literal:
        return literal
    if not policy.any_public and not any(rule.matches(name, port) for rule in policy.rules):
        return "not on the allow list"
    return None


def egress_name_check(*, host: str, port: int, policy: EgressPolicy) -> EgressDecision | None:
    """The part of the decision that needs no DNS: a refusal, or None to go on and resolve."""
    reason = _name_refusal(host_normalize(host), port, policy)
    if reason is None:
        return None
    # The log names the host as it was asked for (easier to recognise).
    shown = host.strip().strip("[]").lower() or host_normalize(host)
    return EgressDecision(shown, port, False, reason)


def egress_addresses_check(
    *, host: str, port: int, addresses: Iterable[str], policy: EgressPolicy
) -> EgressDecision:
    """The resolved addresses of a host that passed the name check: every one must be
    allowed (one bad answer means the name cannot be trusted)."""
    name = host_normalize(host)
    found = tuple(dict.fromkeys(addresses))
    if not found:
        return EgressDecision(name, port, False, "the name does not resolve")
    loopback_ok = (name, port) in policy.test_loopback
    for text in found:
        reason = address_is_forbidden(text)
        if reason and not (loopback_ok and reason == "loopback address"):
            return EgressDecision(name, port, False, f"resolves to a {reason} {text}")
    return EgressDecision(name, port, True, addresses=found)


def _decision_start(*, host: str, port: int, policy: EgressPolicy) -> EgressDecision | _Lookup:
    """Before any lookup: the name's refusal, the decision on an IP literal, or the lookup to
    make (each driver makes it in its own way)."""
    refused = egress_name_check(host=host, port=port, policy=policy)
    if refused is not None:
        return refused
    name = host_normalize(host)
    if ip_literal(name) is not None:
        return egress_addresses_check(host=name, port=port, addresses=[name], policy=policy)
    return _Lookup(name, port)


def _decision_end(
    lookup: _Lookup, addresses: list[str] | None, policy: EgressPolicy
) -> EgressDecision:
    if addresses is None:
        return EgressDecision(lookup.name, lookup.port, False, "the name does not resolve")
    return egress_addresses_check(
        host=lookup.name, port=lookup.port, addresses=addresses, policy=policy
    )


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def egress_check(
    *, host: str, port: int, policy: EgressPolicy, resolve: SyncResolver = system_resolve
) -> EgressDecision:
    """The whole decision, resolving synchronously. A caller that then connects must connect
    to one of ``decision.addresses``."""
    first = _decision_start(host=host, port=port, policy=policy)
    if isinstance(first, EgressDecision):
        return first
    try:
        addresses: list[str] | None = resolve(first.name, first.port)
    except LOOKUP_FAILURES:
        addresses = None
    return _decision_end(first, addresses, policy)


async def egress_resolve_check(
    *, host: str, port: int, policy: EgressPolicy, resolver: Resolver
) -> EgressDecision:
    """The whole decision for a connection about to be made, with an async resolver."""
    first = _decision_start(host=host, port=port, policy=policy)
    if isinstance(first, EgressDecision):
        return first
    try:
        addresses: list[str] | None = await resolver(first.name, first.port)
    except LOOKUP_FAILURES:
        addresses = None
    return _decision_end(first, addresses, policy)
