"""URLs a user asks this server to reach: a repository (the task form, the worker's git, the
pull-request host) and a webhook. Each has one parser here, and both share the rules every
such URL obeys: at most 2,000 printable characters without spaces, brackets and port that
parse, no user name or password, and a host name DNS can take (an IDNA error is a message
here, never an exception further on).

Whether the host may be reached is the egress policy's question (decision.py): judged here on
the name alone (``repository_url_check``), and again on the resolved addresses where a
connection is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from common.errors import InputError

from .addresses import ip_literal
from .decision import EgressPolicy, egress_name_check
from .names import host_name_problem, host_normalize

MAX_URL = 2000
_SHOWN_HOST = 80  # characters of a refused host name repeated in a message

type Rule = Literal["scheme", "form", "reach"]


class UrlRefused(InputError):
    """``rule`` says which kind of rule refused the URL: "scheme" (not https, or file:// where
    local repositories are off), "reach" (the egress policy refuses its host) or "form"
    (anything else about its shape)."""

    def __init__(self, message: str, *, rule: Rule = "form") -> None:
        super().__init__(message)
        self.rule: Rule = rule


# --- what every URL shares ------------------------------------------------------------------


def _split(url: str, what: str) -> SplitResult:
    if len(url) > MAX_URL:
        raise UrlRefused(f"The {what} is longer than {MAX_URL:,} characters.")
    if not url.isprintable() or " " in url:
        raise UrlRefused(f"The {what} has spaces or control characters in it.")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        # e.g. an unclosed IPv6 bracket: urlsplit refuses it, and must not become a 500.
        raise UrlRefused(
            f"The {what} is not a valid URL (check the brackets, and that the port is a "
            "number from 1 to 65535)."
        ) from None
    if port == 0:
        raise UrlRefused(f"The port in the {what} must be a number from 1 to 65535.")
    return parts


def _shown(host: str) -> str:
    return host if len(host) <= _SHOWN_HOST else host[:_SHOWN_HOST] + "…"


def _host(parts: SplitResult, what: str, example: str) -> str:
    """The URL's host, normalised, or UrlRefused saying what is wrong with it."""
    raw = parts.hostname or ""
    if not raw:
        raise UrlRefused(f"The {what} needs a host name, e.g. {example}")
    name = host_normalize(raw)
    if ip_literal(name) is None:
        problem = host_name_problem(name)
        if problem:
            raise UrlRefused(f"The host name {_shown(raw)!r} in the {what} {problem}.")
    return name


def _target(host: str, port: int, default_port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default_port else f"{shown}:{port}"


# --- repositories ---------------------------------------------------------------------------

REPOSITORY_EXAMPLE = "https://github.com/you/project.git"


@dataclass(frozen=True)
class RepositoryUrl:
    url: str  # as given, without surrounding spaces
    host: str  # normalised; "" for a local repository
    port: int  # given, or 443; 0 for a local repository
    path: str  # the URL's path (a local repository's absolute folder)
    local: bool  # file:// (development and tests only)


def _local_repository(parts: SplitResult, url: str, *, local_allowed: bool) -> RepositoryUrl:
    if not local_allowed:
        raise UrlRefused(
            "Local file:// repositories are turned off on this server; use an https URL.",
            rule="scheme",
        )
    path = PurePosixPath(parts.path)
    if parts.netloc or not path.is_absolute() or ".." in path.parts:
        raise UrlRefused("Use file:///absolute/path/to/repo.git")
    if parts.query or parts.fragment:
        raise UrlRefused("Remove the ?query or #fragment from the file:// URL.")
    return RepositoryUrl(url=url, host="", port=0, path=parts.path, local=True)


def repository_url_parse(*, url: str, local_allowed: bool) -> RepositoryUrl:
    """The shape of a repository URL: https (file:// when local repositories are allowed),
    no credentials, ?query or #fragment, a valid host and a path. No reachability: see
    ``repository_url_check``. Raises UrlRefused saying what to fix."""
    text = url.strip()
    if not text:
        raise UrlRefused(f"Enter the repository URL, e.g. {REPOSITORY_EXAMPLE}")
    parts = _split(text, "repository URL")
    scheme = parts.scheme.lower()
    if scheme == "file":
        return _local_repository(parts, text, local_allowed=local_allowed)
    if scheme != "https":
        raise UrlRefused(
            "Only https:// repository URLs are accepted (not ssh, git, http or local paths).",
            rule="scheme",
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused(
            "Remove the user name or token from the URL: credentials in a URL would be visible "
            "in the container's settings."
        )
    host = _host(parts, "repository URL", "https://github.com/...")
    if not parts.path.strip("/"):
        raise UrlRefused("The URL needs the repository path after the host.")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise UrlRefused(
            "Remove the ?query or #fragment from the URL: a clone URL needs neither, and a "
            "token in it would be visible in the container's settings."
        )
    return RepositoryUrl(url=text, host=host, port=parts.port or 443, path=parts.path, local=False)


def _reach_refusal(host: str, port: int, policy: EgressPolicy) -> UrlRefused | None:
    refused = egress_name_check(host=host, port=port, policy=policy)
    if refused is None:
        return None
    target = _target(host, port, 443)
    if refused.reason == "not on the allow list":
        message = (
            f"Agents may not reach {target}: it is not on the allow list of hosts they may "
            "reach (AGENT_EGRESS_ALLOW). Use a repository on an allowed host, or ask the "
            "operator to allow this one."
        )
    elif refused.reason.startswith("the "):
        message = f"Agents cannot reach {target}: {refused.reason}."
    else:
        message = (
            f"Agents cannot reach {target} (it is a {refused.reason}): they reach only public "
            "hosts. Use the repository's public https URL."
        )
    return UrlRefused(message, rule="reach")


def repository_url_check(*, url: str, local_allowed: bool, policy: EgressPolicy) -> RepositoryUrl:
    """``repository_url_parse``, and the host judged by ``policy`` without DNS: no forbidden
    IP literal (in any spelling), no loopback or metadata name, on the allow list. Raises
    UrlRefused (``rule="reach"`` for the policy's refusals)."""
    parsed = repository_url_parse(url=url, local_allowed=local_allowed)
    if parsed.local:
        return parsed
    refusal = _reach_refusal(parsed.host, parsed.port, policy)
    if refusal is not None:
        raise refusal
    if "." not in parsed.host and ip_literal(parsed.host) is None:
        raise UrlRefused(
            "The URL needs a full host name with a domain, e.g. https://github.com/..."
        )
    return parsed


# --- web addresses (webhooks) ---------------------------------------------------------------


@dataclass(frozen=True)
class WebUrl:
    url: str  # as given, without surrounding spaces
    scheme: str  # "https", or "http" for a loopback server the test settings allow
    host: str  # normalised
    port: int  # given, or the scheme's own


def web_url_parse(*, url: str, what: str, policy: EgressPolicy) -> WebUrl:
    """An https URL to send to: no credentials, a valid host. Plain http only for a host:port
    the policy's test loopback allowance names. Raises UrlRefused saying what to fix."""
    text = url.strip()
    parts = _split(text, what)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise UrlRefused(f"The {what} must start with https:// and name a host.", rule="scheme")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused(f"Put no user name or password before the host in the {what}.")
    host = _host(parts, what, "https://hooks.example.com/...")
    port = parts.port or (443 if scheme == "https" else 80)
    if scheme != "https" and (host, port) not in policy.test_loopback:
        raise UrlRefused(f"The {what} must use https://.", rule="scheme")
    return WebUrl(url=text, scheme=scheme, host=host, port=port)
