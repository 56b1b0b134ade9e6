"""The allow-list (``AGENT_EGRESS_ALLOW``), judged on the host NAME asked for: ``github.com``
(exactly that host), ``*.github.com`` (strict subdomains only), an optional ``:port``
(``gitlab.com:443``), and ``*`` (any public host). A wildcard never matches an IP literal; an IP
literal is reachable only when listed as such.

Plain Python (no Django at import time): config/settings/base.py parses the list with it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from common.errors import InputError

from .addresses import address_is_forbidden, host_literal_is_forbidden, ip_literal
from .names import host_normalize, hostname_valid

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

_PORT = re.compile(r"^[1-9][0-9]{0,4}$")
_NOT_A_HOST = ("://", "/", "@", "?", "#")


@dataclass(frozen=True)
class EgressRule:
    """One allow-list entry. ``kind``: exact host, strict subdomains of ``host``, or any host."""

    kind: Literal["exact", "subdomains", "any"]
    host: str  # lower case; "" for "any"; the base domain for "subdomains"
    port: int | None  # None: every port

    def matches(self, host: str, port: int) -> bool:
        return (self.port is None or self.port == port) and self.host_matches(host)

    def host_matches(self, host: str) -> bool:
        if self.kind == "exact":
            return host == self.host
        if ip_literal(host) is not None:
            return False  # wildcards never match an address, only names
        return self.kind == "any" or host.endswith("." + self.host)

    def __str__(self) -> str:
        host = {"exact": self.host, "subdomains": f"*.{self.host}", "any": "*"}[self.kind]
        if ":" in host:
            host = f"[{host}]"
        return host if self.port is None else f"{host}:{self.port}"


def egress_rule_within(rule: EgressRule, bounds: Iterable[EgressRule]) -> bool:
    """Whether every host and port ``rule`` lets through, one of ``bounds`` lets through too:
    a list made of such rules reaches nothing the bounds do not."""
    return any(_covers(bound, rule) for bound in bounds)


def _covers(bound: EgressRule, rule: EgressRule) -> bool:
    if bound.port is not None and bound.port != rule.port:
        return False
    if rule.kind == "exact":
        return bound.host_matches(rule.host)
    if bound.kind != "subdomains":
        return bound.kind == "any"
    # Subdomains of the rule's base are the bound's when the base is the bound's or under it.
    base = rule.host
    return rule.kind == "subdomains" and (base == bound.host or base.endswith("." + bound.host))


def port_parse(text: str, entry: str) -> int:
    if not _PORT.match(text) or int(text) > 65535:
        raise InputError(
            f"{entry!r}: the port must be a number from 1 to 65535 (no leading zeros)."
        )
    return int(text)


def host_port_split(entry: str) -> tuple[str, int | None]:
    """``host[:port]`` / ``[v6][:port]``; an unbracketed IPv6 literal is refused as ambiguous."""
    if entry.startswith("["):
        close = entry.find("]")
        if close == -1:
            raise InputError(f"{entry!r}: an IPv6 address needs a closing ']'.")
        host, rest = entry[1:close], entry[close + 1 :]
        if rest and not rest.startswith(":"):
            raise InputError(f"{entry!r}: only ':port' may follow ']'.")
        port = port_parse(rest[1:], entry) if rest else None
        if not isinstance(ip_literal(host), ipaddress.IPv6Address):
            raise InputError(f"{entry!r}: brackets hold IPv6 addresses only.")
        return host, port
    if entry.count(":") > 1:
        raise InputError(
            f"{entry!r}: write IPv6 addresses in brackets, e.g. [2001:db8::1]:443, so the port "
            "cannot be mistaken for part of the address."
        )
    host, sep, port_text = entry.partition(":")
    return host, (port_parse(port_text, entry) if sep else None)


def _entry_clean(raw: object) -> str:
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
    if any(marker in entry for marker in _NOT_A_HOST):
        raise InputError(
            f"{raw!r}: give a host name (e.g. github.com or *.github.com), not a URL or a path."
        )
    return entry


def _wildcard_rule(raw: str, host: str, port: int | None) -> EgressRule:
    if host == "*":
        return EgressRule("any", "", port)
    if not host.startswith("*."):
        raise InputError(
            f"{raw!r}: '*' may stand only as the whole host ('*') or as the first label "
            "('*.example.com')."
        )
    base = host[2:]
    if "*" in base or not hostname_valid(base):
        raise InputError(f"{raw!r}: after '*.' must come a valid domain, e.g. *.github.com.")
    if base.count(".") < 1 or ip_literal(base) is not None:
        raise InputError(
            f"{raw!r} is too broad: a wildcard needs a domain of at least two labels "
            "(*.example.com, not *.com). Use '*' if you really mean any public host."
        )
    return EgressRule("subdomains", base, port)


def _exact_rule(raw: str, host: str, port: int | None) -> EgressRule:
    address = ip_literal(host)
    if address is not None:
        reason = address_is_forbidden(address)
        if reason:
            raise InputError(f"{raw!r} can never be reached: it is a {reason}.")
        return EgressRule("exact", str(address), port)
    if host.endswith(".") or not hostname_valid(host):
        raise InputError(
            f"{raw!r} is not a valid host name (letters, digits and '-' in dot-separated "
            "labels, no trailing dot)."
        )
    if "." not in host:
        raise InputError(f"{raw!r}: give a full host name with a domain, e.g. github.com.")
    forbidden = host_literal_is_forbidden(host)
    if forbidden:
        raise InputError(f"{raw!r} can never be reached: it is a {forbidden}.")
    return EgressRule("exact", host, port)


def egress_rule_parse(raw: str) -> EgressRule:
    """One allow-list entry, or InputError saying what is wrong with it."""
    entry = _entry_clean(raw)
    host, port = host_port_split(entry)
    if "*" in host:
        return _wildcard_rule(raw, host, port)
    return _exact_rule(raw, host, port)


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
        host, port = host_port_split(raw.strip().lower())
        if port is None:
            raise InputError(f"{raw!r}: a test loopback entry needs a port (host:port).")
        allowed.add((host_normalize(host), port))
    return frozenset(allowed)
