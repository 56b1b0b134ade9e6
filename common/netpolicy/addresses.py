"""Which addresses no egress may reach: the IANA special-purpose registries and the cloud
metadata services, written down here.

Python's ``is_private``/``is_global`` are not used: their answers change between releases
(3.12.1 calls all of 192.0.0.0/24 public, including Oracle's metadata address 192.0.0.192) and
none of them knows that 168.63.129.16, a public address, is Azure's platform endpoint. Every
block of both registries is refused, also the few the registry calls globally reachable
(anycast relays, AS112 DNS sinks): nothing an agent or a webhook has reason to talk to.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SpecialBlock:
    network: IPNetwork
    kind: str  # the refusal's words: "<kind> address"
    source: str  # where the block is defined


def _table(rows: list[tuple[str, str, str]]) -> tuple[SpecialBlock, ...]:
    blocks = [SpecialBlock(ipaddress.ip_network(net), kind, source) for net, kind, source in rows]
    # The most specific block names the address (192.0.0.9 is PCP anycast, not just IETF).
    return tuple(sorted(blocks, key=lambda block: block.network.prefixlen, reverse=True))


# IANA IPv4 Special-Purpose Address Registry (RFC 6890, as updated to 2024), and the multicast
# block of the IANA IPv4 Multicast Address Space Registry.
IPV4_SPECIAL = _table(
    [
        ("0.0.0.0/8", "this-network", "RFC 791, section 3.2"),
        ("0.0.0.0/32", "unspecified", "RFC 1122, section 3.2.1.3"),
        ("10.0.0.0/8", "private", "RFC 1918"),
        ("100.64.0.0/10", "shared (CGNAT)", "RFC 6598"),
        ("127.0.0.0/8", "loopback", "RFC 1122, section 3.2.1.3"),
        ("169.254.0.0/16", "link-local", "RFC 3927"),
        ("172.16.0.0/12", "private", "RFC 1918"),
        ("192.0.0.0/24", "IETF protocol assignment", "RFC 6890, section 2.1"),
        ("192.0.0.0/29", "IPv4 service continuity", "RFC 7335"),
        ("192.0.0.8/32", "IPv4 dummy", "RFC 7600"),
        ("192.0.0.9/32", "PCP anycast", "RFC 7723"),
        ("192.0.0.10/32", "TURN anycast", "RFC 8155"),
        ("192.0.0.170/32", "NAT64/DNS64 discovery", "RFC 8880, RFC 7050"),
        ("192.0.0.171/32", "NAT64/DNS64 discovery", "RFC 8880, RFC 7050"),
        ("192.0.2.0/24", "documentation", "RFC 5737 (TEST-NET-1)"),
        ("192.31.196.0/24", "AS112 DNS", "RFC 7535"),
        ("192.52.193.0/24", "AMT relay", "RFC 7450"),
        ("192.88.99.0/24", "6to4 relay anycast", "RFC 7526 (deprecated)"),
        ("192.168.0.0/16", "private", "RFC 1918"),
        ("192.175.48.0/24", "AS112 DNS", "RFC 7534"),
        ("198.18.0.0/15", "benchmarking", "RFC 2544"),
        ("198.51.100.0/24", "documentation", "RFC 5737 (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation", "RFC 5737 (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast", "RFC 5771"),
        ("240.0.0.0/4", "reserved", "RFC 1112, section 4"),
        ("255.255.255.255/32", "limited broadcast", "RFC 919, section 7; RFC 8190"),
    ]
)

# IANA IPv6 Special-Purpose Address Registry (RFC 6890, as updated to 2025), and the blocks of
# the IANA IPv6 Address Space Registry outside global unicast that have a name of their own.
IPV6_SPECIAL = _table(
    [
        ("::/128", "unspecified", "RFC 4291"),
        ("::1/128", "loopback", "RFC 4291"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation", "RFC 8215"),
        ("100::/64", "discard-only", "RFC 6666"),
        ("100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780"),
        ("2001::/23", "IETF protocol assignment", "RFC 2928"),
        ("2001::/32", "Teredo", "RFC 4380"),
        ("2001:1::1/128", "PCP anycast", "RFC 7723"),
        ("2001:1::2/128", "TURN anycast", "RFC 8155"),
        ("2001:1::3/128", "DNS-SD SRP anycast", "RFC 9665"),
        ("2001:2::/48", "benchmarking", "RFC 5180"),
        ("2001:3::/32", "AMT relay", "RFC 7450"),
        ("2001:4:112::/48", "AS112 DNS", "RFC 7535"),
        ("2001:10::/28", "ORCHID", "RFC 4843 (deprecated)"),
        ("2001:20::/28", "ORCHIDv2", "RFC 7343"),
        ("2001:30::/28", "drone remote ID (DET)", "RFC 9374"),
        ("2001:db8::/32", "documentation", "RFC 3849"),
        ("2620:4f:8000::/48", "AS112 DNS", "RFC 7534"),
        ("3fff::/20", "documentation", "RFC 9637"),
        ("5f00::/16", "segment routing (SRv6) SID", "RFC 9602"),
        ("fc00::/7", "private", "RFC 4193 (unique local)"),
        ("fe80::/10", "link-local", "RFC 4291"),
        ("fec0::/10", "site-local", "RFC 3879 (deprecated, still routed inside some sites)"),
        ("ff00::/8", "multicast", "RFC 4291"),
    ]
)
# Only this block of the IPv6 space is global unicast (IANA IPv6 Address Space Registry).
IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")

# IPv6 forms that carry an IPv4 address: judged by that address. 2002::/16 (6to4) is read by
# ``sixtofour``, ::ffff:0:0/96 (RFC 4291) by ``ipv4_mapped``.
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052

# Instance metadata and platform services: credentials for whoever asks from inside a cloud.
METADATA_ADDRESSES: dict[str, str] = {
    # AWS EC2, Azure IMDS, Google Cloud (metadata.google.internal), Oracle Cloud, DigitalOcean,
    # OpenStack: each provider's instance metadata documentation.
    "169.254.169.254": "instance metadata of AWS, Azure, Google Cloud, OCI and others",
    "fd00:ec2::254": "AWS EC2 instance metadata over IPv6 (Nitro instances)",
    "169.254.170.2": "AWS ECS task metadata and credentials endpoint",
    "169.254.170.23": "AWS EKS Pod Identity agent",
    "fd00:ec2::23": "AWS EKS Pod Identity agent over IPv6",
    "168.63.129.16": "Azure platform endpoint (WireServer, DNS, health probes)",
    "100.100.100.200": "Alibaba Cloud ECS instance metadata",
    "192.0.0.192": "Oracle Cloud Infrastructure Classic instance metadata",
}
_METADATA = frozenset(ipaddress.ip_address(address) for address in METADATA_ADDRESSES)
# Names of metadata services that resolve only inside a cloud (Google Cloud's documentation).
METADATA_NAMES = frozenset({"metadata.google.internal"})

_LOCALHOST_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
# Every label decimal, octal or 0x-hex: an IPv4 address in one of inet_aton's spellings.
_NUMERIC_NAME = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*$")


def ip_literal(host: str) -> IPAddress | None:
    """The IP address a host names literally (``[v6]`` brackets allowed), or None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    embedded = address.ipv4_mapped or address.sixtofour
    if embedded is None and address in NAT64_WELL_KNOWN:
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return embedded


def _special_kind(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv4Address):
        return next((b.kind for b in IPV4_SPECIAL if address in b.network), None)
    kind = next((b.kind for b in IPV6_SPECIAL if address in b.network), None)
    if kind is None and address not in IPV6_GLOBAL_UNICAST:
        return "reserved"
    return kind


def address_is_forbidden(ip: str | IPAddress) -> str | None:
    """Why nothing may connect to this address for an agent or a user (None: a public one)."""
    try:
        address = ip if not isinstance(ip, str) else ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "IPv6 address with a zone"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = address_is_forbidden(embedded)
            return f"{reason}, embedded in an IPv6 address" if reason else None
    if address in _METADATA:
        return "cloud metadata address"
    kind = _special_kind(address)
    return f"{kind} address" if kind else None


def host_literal_is_forbidden(host: str) -> str | None:
    """Why a host, judged without DNS, can never be reached: a forbidden IP literal (in any of
    the spellings git and curl accept), a loopback name (``localhost``, ``*.localhost``) or a
    metadata service's name. The resolved-address check still applies to every other name."""
    name = host.strip().lower().rstrip(".")
    if name in _LOCALHOST_NAMES or name.endswith(".localhost"):
        return "loopback name"
    if name in METADATA_NAMES:
        return "cloud metadata name"
    address = ip_literal(name)
    if address is None and _NUMERIC_NAME.match(name):
        # 127.1, 0x7f.0.0.1, 0177.0.0.1, 2130706433: git and curl resolve these with
        # inet_aton, which reads them as IPv4 addresses. No real host name looks like this.
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return "malformed IPv4 address"
    if address is not None:
        return address_is_forbidden(address)
    return None
