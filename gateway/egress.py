"""Where an agent container may connect: the one home of the egress rules.

Two layers, both always applied:

1. The allow-list (``AGENT_EGRESS_ALLOW``), judged on the host NAME the container asked for:
   ``github.com`` (exactly that host), ``*.github.com`` (strict subdomains only), an optional
   ``:port`` (``gitlab.com:443``), and ``*`` (any public host). A wildcard never matches an IP
   literal; an IP literal is reachable only when listed as such.
2. Address classes that are refused whatever the list says (loopback, private, link-local,
   CGNAT, cloud metadata, unspecified, multicast, reserved, and IPv6 forms that embed one of
   those), judged on the RESOLVED addresses. The caller connects to an address this module
   checked, never resolves again, so a DNS answer that changes between check and connect
   (rebinding) gains nothing.

The Anthropic API host is refused for tunnels too: the model is reached through the gateway's
API route, which swaps the placeholder for the real credential; a tunnel would carry only the
placeholder, or let a stolen credential be used from inside.

Plain Python (no Django at import time): config/settings/base.py parses the list with it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from common.errors import InputError

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: async resolver: (host, port) -> the addresses the name stands for, as strings
type Resolver = Callable[[str, int], Awaitable[list[str]]]

DEFAULT_EGRESS_ALLOW = (
    "github.com",
    "*.github.com",
    "*.githubusercontent.com",
    "gitlab.com",
    "bitbucket.org",
    "registry.npmjs.org",
    "pypi.org",
    "files.pythonhosted.org",
)

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PORT = re.compile(r"^[1-9][0-9]{0,4}$")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCALHOST_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


# --- addresses ------------------------------------------------------------------------------


def address_is_forbidden(ip: str | IPAddress) -> str | None:
    """Why an agent may never connect to this address (None: a public address).

    Also the check repository-URL validation uses for IP literals.
    """
    try:
        address = ip if not isinstance(ip, str) else ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "IPv6 address with a zone"
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            reason = address_is_forbidden(embedded)
            return f"{reason}, embedded in an IPv6 address" if reason else None
    if address in _METADATA:
        return "cloud metadata address"
    if address.is_loopback:
        return "loopback address"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_link_local:
        return "link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "shared (CGNAT) address"
    if address.is_multicast:
        return "multicast address"
    if address.is_reserved:
        return "reserved address"
    if address.is_private:
        return "private address"
    if not address.is_global:
        return "not a public address"
    return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def host_literal_is_forbidden(host: str) -> str | None:
    """Why a host, judged without DNS, can never be reached: a forbidden IP literal or a
    loopback name (``localhost``, ``*.localhost``). For up-front checks such as the repository
    URL form; the resolved-address check at connect time still applies to every other name."""
    name = host.strip().lower().rstrip(".")
    if name in _LOCALHOST_NAMES or name.endswith(".localhost"):
        return "loopback name"
    address = _ip_literal(name)
    if address is not None:
        return address_is_forbidden(address)
    return None


# --- the allow-list -------------------------------------------------------------------------


@dataclass(frozen=True)
class EgressRule:
    """One allow-list entry. ``kind``: exact host, strict subdomains of ``host``, or any host."""

    kind: Literal["exact", "subdomains", "any"]
    host: str  # lower case; "" for "any"; the base domain for "subdomains"
    port: int | None  # None: every port

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.kind == "exact":
            return host == self.host
        if _ip_literal(host) is not None:
            return False  # wildcards never match an address, only names
        if self.kind == "any":
            return True
        return host.endswith("." + self.host)

    def __str__(self) -> str:
        host = {"exact": self.host, "subdomains": f"*.{self.host}", "any": "*"}[self.kind]
        if ":" in host:
            host = f"[{host}]"
        return host if self.port is None else f"{host}:{self.port}"


def _port_parse(text: str, entry: str) -> int:
    if not _PORT.match(text) or int(text) > 65535:
        raise InputError(
            f"{entry!r}: the port must be a number from 1 to 65535 (no leading zeros)."
        )
    return int(text)


def _hostname_valid(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    return all(_LABEL.match(label) for label in name.split("."))


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host[:port]`` / ``[v6][:port]``; an unbracketed IPv6 literal is refused as ambiguous."""
    if entry.startswith("["):
        close = entry.find("]")
        if close == -1:
            raise InputError(f"{entry!r}: an IPv6 address needs a closing ']'.")
        host, rest = entry[1:close], entry[close + 1 :]
        if rest and not rest.startswith(":"):
            raise InputError(f"{entry!r}: only ':port' may follow ']'.")
        port = _port_parse(rest[1:], entry) if rest else None
        if not isinstance(_ip_literal(host), ipaddress.IPv6Address):
            raise InputError(f"{entry!r}: brackets hold IPv6 addresses only.")
        return host, port
    if entry.count(":") > 1:
        raise InputError(
            f"{entry!r}: write IPv6 addresses in brackets, e.g. [2001:db8::1]:443, so the port "
            "cannot be mistaken for part of the address."
        )
    host, sep, port_text = entry.partition(":")
    return host, (_port_parse(port_text, entry) if sep else None)


def egress_rule_parse(raw: str) -> EgressRule:
    """One allow-list entry, or InputError saying what is wrong with it."""
    if not isinstance(raw, str):
        raise InputError("each allow-list entry must be text")
    entry = raw.strip().lower()
    if not entry:
        raise InputError("an allow-list entry is empty (two commas in a row?).")
    if not entry.isascii() or not entry.isprintable() or any(c.isspace() for c in entry):
        raise InputError(
            f"{raw!r}: use plain ASCII host names without spaces (write international names "
            "in their xn-- form)."
        )
    if "://" in entry or "/" in entry or "@" in entry or "?" in entry or "#" in entry:
        raise InputError(
            f"{raw!r}: give a host name (e.g. github.com or *.github.com), not a URL or a path."
        )
    host, port = _split_port(entry)
    if host == "*":
        return EgressRule("any", "", port)
    if host.startswith("*."):
        base = host[2:]
        if "*" in base or not _hostname_valid(base):
            raise InputError(f"{raw!r}: after '*.' must come a valid domain, e.g. *.github.com.")
        if base.count(".") < 1 or _ip_literal(base) is not None:
            raise InputError(
                f"{raw!r} is too broad: a wildcard needs a domain of at least two labels "
                "(*.example.com, not *.com). Use '*' if you really mean any public host."
            )
        return EgressRule("subdomains", base, port)
    if "*" in host:
        raise InputError(
            f"{raw!r}: '*' may stand only as the whole host ('*') or as the first label "
            "('*.example.com')."
        )
    address = _ip_literal(host)
    if address is not None:
        reason = address_is_forbidden(address)
        if reason:
            raise InputError(f"{raw!r} can never be reached: it is a {reason}.")
        return EgressRule("exact", str(address), port)
    if host.endswith(".") or not _hostname_valid(host):
        raise InputError(
            f"{raw!r} is not a valid host name (letters, digits and '-' in dot-separated "
            "labels, no trailing dot)."
        )
    if "." not in host:
        raise InputError(f"{raw!r}: give a full host name with a domain, e.g. github.com.")
    if host_literal_is_forbidden(host):
        raise InputError(f"{raw!r} can never be reached: it names this machine (loopback).")
    return EgressRule("exact", host, port)


def egress_rules_parse(entries: str | Iterable[str]) -> tuple[EgressRule, ...]:
    """``AGENT_EGRESS_ALLOW``: a comma-separated string or a list of entries. Empty entries
    (a trailing comma) are skipped; any malformed or over-broad entry raises InputError."""
    items = entries.split(",") if isinstance(entries, str) else list(entries)
    kept = [item for item in items if not (isinstance(item, str) and not item.strip())]
    return tuple(egress_rule_parse(item) for item in kept)


def loopback_allowances_parse(entries: Iterable[str]) -> frozenset[tuple[str, int]]:
    """``AGENT_EGRESS_TEST_ALLOW_LOOPBACK`` entries, each ``host:port`` (tests only)."""
    allowed: set[tuple[str, int]] = set()
    for raw in entries:
        if not raw.strip():
            continue
        host, port = _split_port(raw.strip().lower())
        if port is None:
            raise InputError(f"{raw!r}: a test loopback entry needs a port (host:port).")
        allowed.add((_host_normalize(host), port))
    return frozenset(allowed)


# --- the decision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EgressPolicy:
    rules: tuple[EgressRule, ...]
    #: the Anthropic API (host, port): never reachable through a tunnel
    api_host: str = ""
    api_port: int = 443
    #: (host, port) pairs allowed on loopback: tests only (settings refuse it elsewhere)
    test_loopback: frozenset[tuple[str, int]] = field(default_factory=frozenset)


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


def _host_normalize(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]  # "github.com." is github.com
    address = _ip_literal(host)
    return str(address) if address is not None else host


def egress_name_check(*, host: str, port: int, policy: EgressPolicy) -> EgressDecision | None:
    """The part of the decision that needs no DNS: a refusal, or None to go on and resolve."""
    name = _host_normalize(host)

    def refuse(reason: str) -> EgressDecision:
        # The log names the host as the container spelled it (easier to recognise).
        return EgressDecision(host.strip().strip("[]").lower() or name, port, False, reason)

    if not 1 <= port <= 65535:
        return refuse("invalid port")
    address = _ip_literal(name)
    if address is None and not _hostname_valid(name):
        return refuse("malformed host name")
    if name == policy.api_host and (address is None or port == policy.api_port):
        # A named API host is refused on every port; a literal one (a test fake) on its port.
        return refuse("the model API is reached through the gateway, not a tunnel")
    if (name, port) in policy.test_loopback:
        return None
    literal = host_literal_is_forbidden(name)
    if literal:
        return refuse(literal)
    if not any(rule.matches(name, port) for rule in policy.rules):
        return refuse("not on the allow list")
    return None


def egress_addresses_check(
    *, host: str, port: int, addresses: Iterable[str], policy: EgressPolicy
) -> EgressDecision:
    """The resolved addresses of a host that passed the name check: every one must be
    allowed (one bad answer means the name cannot be trusted)."""
    name = _host_normalize(host)
    found = tuple(dict.fromkeys(addresses))
    if not found:
        return EgressDecision(name, port, False, "the name does not resolve")
    loopback_ok = (name, port) in policy.test_loopback
    for text in found:
        reason = address_is_forbidden(text)
        if reason and not (loopback_ok and reason == "loopback address"):
            return EgressDecision(name, port, False, f"resolves to a {reason} {text}")
    return EgressDecision(name, port, True, addresses=found)


async def egress_resolve_check(
    *, host: str, port: int, policy: EgressPolicy, resolver: Resolver
) -> EgressDecision:
    """The whole decision for a connection about to be made (the gateway's path)."""
    first = _before_resolving(host=host, port=port, policy=policy)
    if isinstance(first, EgressDecision):
        return first
    name, addresses = first
    if addresses is None:
        try:
            addresses = await resolver(name, port)
        except OSError:
            return EgressDecision(name, port, False, "the name does not resolve")
    return egress_addresses_check(host=name, port=port, addresses=addresses, policy=policy)


def _before_resolving(
    *, host: str, port: int, policy: EgressPolicy
) -> EgressDecision | tuple[str, list[str] | None]:
    """The name's refusal, or the normalised name with its addresses when it is an IP literal
    (None: the caller resolves it, in its own way, sync or async)."""
    refused = egress_name_check(host=host, port=port, policy=policy)
    if refused is not None:
        return refused
    name = _host_normalize(host)
    return name, ([name] if _ip_literal(name) is not None else None)


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def egress_check(
    *,
    host: str,
    port: int,
    policy: EgressPolicy | None = None,
    resolve: Callable[[str, int], list[str]] = _system_resolve,
) -> EgressDecision:
    """Synchronous form of the decision (for checks outside the gateway, e.g. a clone URL).
    A caller that then connects must connect to one of ``decision.addresses``."""
    policy = policy if policy is not None else egress_policy_from_settings()
    first = _before_resolving(host=host, port=port, policy=policy)
    if isinstance(first, EgressDecision):
        return first
    name, addresses = first
    if addresses is None:
        try:
            addresses = resolve(name, port)
        except OSError:
            return EgressDecision(name, port, False, "the name does not resolve")
    return egress_addresses_check(host=name, port=port, addresses=addresses, policy=policy)


def egress_policy_from_settings() -> EgressPolicy:
    """The policy the settings describe (settings already refused malformed values)."""
    from urllib.parse import urlsplit

    from django.conf import settings

    api = urlsplit(settings.ANTHROPIC_API_URL)
    test_loopback: frozenset[tuple[str, int]] = frozenset()
    if getattr(settings, "TESTING", False):  # never honoured outside test settings
        test_loopback = loopback_allowances_parse(settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK)
    return EgressPolicy(
        rules=egress_rules_parse(settings.AGENT_EGRESS_ALLOW),
        api_host=_host_normalize(api.hostname or ""),
        api_port=api.port or (443 if api.scheme == "https" else 80),
        test_loopback=test_loopback,
    )
