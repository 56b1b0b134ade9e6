"""Host names as DNS accepts them, checked before anything resolves them.

A name the resolver cannot encode (an empty label as in ``a..b``, a label over 63 characters)
makes ``socket.getaddrinfo`` raise UnicodeError from its IDNA codec rather than a lookup error;
saying what is wrong up front keeps that out of every caller.
"""

from __future__ import annotations

import re

from .addresses import ip_literal

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_NAME = 253
MAX_LABEL = 63


def host_name_problem(name: str) -> str | None:
    """What is wrong with a host name (lower case, without a trailing dot), as the end of a
    sentence about it, or None when DNS would take it."""
    if not name:
        return "is empty"
    if not name.isascii():
        return (
            "has characters outside ASCII: write an international name in its xn-- form "
            "(as your browser's address bar shows it)"
        )
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    for label in name.split("."):
        if not label:
            return "has an empty part (two dots in a row, or a dot at the start or end)"
        if len(label) > MAX_LABEL:
            return f"has a part longer than {MAX_LABEL} characters between two dots"
        if not _LABEL.match(label):
            return (
                "may have only letters, digits and '-' between its dots, and no '-' at the "
                "start or end of a part"
            )
    return None


def hostname_valid(name: str) -> bool:
    return host_name_problem(name) is None


def host_normalize(host: str) -> str:
    """Lower case, brackets and one trailing dot ("github.com." is github.com) removed, and an
    IP literal in its canonical form."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    address = ip_literal(host)
    return str(address) if address is not None else host
