"""Checks of what a user types into an environment: each raises InputError naming the field and
saying what to fix; none repeats a secret value."""

import fnmatch
import re

from django.conf import settings

from accounts.env_rules import (
    env_name_behaviour_refusal,
    env_name_refused_message,
    env_name_secret_refusal,
)
from common.errors import InputError
from common.logging import REDACT_MIN_CHARS
from common.netpolicy import UrlRefused, egress_rules_parse, repository_url_parse

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
# Names the runner sets in a phase's container itself; the names that change how programs run or
# where traffic goes are the agent's extra-variable rules (accounts.env_rules), applied first.
RESERVED_PREFIXES = ("DOCKER_",)
RESERVED_NAMES = frozenset({"HOME", "PATH", "USER", "SHELL", "REPO_URL", "REPO_BRANCH"})
MAX_VARIABLES = 50
MAX_VALUE_BYTES = 16 * 1024
MAX_PATTERNS = 20
NAME_MAX_CHARS = 100  # an environment's name (its column holds as many)
MAX_PATTERN_CHARS = 500
MAX_ALLOW_ENTRIES = 100


def images_allowed() -> list[str]:
    """AGENT_IMAGE and AGENT_IMAGES_ALLOWED, once each."""
    return list(dict.fromkeys([settings.AGENT_IMAGE, *settings.AGENT_IMAGES_ALLOWED]))


def image_check(*, image: str) -> str:
    image = image.strip()
    allowed = images_allowed()
    if image not in allowed:
        raise InputError(
            f"{image[:100]!r} is not on this server's list of allowed images "
            f"(AGENT_IMAGES_ALLOWED); choose one of: {', '.join(allowed)}.",
            field="image",
        )
    return image


def script_check(*, script: str, field: str) -> str:
    """A bash script of at most AGENT_ENV_SCRIPT_MAX_BYTES, no NUL; line ends made Unix."""
    script = script.replace("\r\n", "\n")
    size = len(script.encode())
    limit = settings.AGENT_ENV_SCRIPT_MAX_BYTES
    if size > limit:
        raise InputError(
            f"The script is {size:,} bytes; the limit is {limit:,} (AGENT_ENV_SCRIPT_MAX_BYTES). "
            "Put long scripts in the repository and call them from here.",
            field=field,
        )
    if "\x00" in script:
        raise InputError("The script holds a NUL character.", field=field)
    return script


def variables_parse(*, text: str, field: str) -> dict[str, str]:
    """``NAME=value`` lines (blank lines and ``#`` comments skipped) as a dict. Messages name the
    line by its number and never quote what it holds: a value, or a secret pasted in the wrong
    shape, is not repeated. Setup secrets (field "setup_secrets") must be long enough for the
    logs to hide them (REDACT_MIN_CHARS)."""
    found: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep:
            raise InputError(f"Line {number}: write NAME=value.", field=field)
        _name_check(name=name, number=number, field=field)
        if name in found:
            raise InputError(
                f"Line {number} gives the same name as line {lines[name]}; keep one of them.",
                field=field,
            )
        _value_check(value=value, number=number, field=field)
        found[name], lines[name] = value, number
        if len(found) > MAX_VARIABLES:
            raise InputError(f"At most {MAX_VARIABLES} variables.", field=field)
    return found


def _name_problem(name: str) -> str | None:
    """Why today's rules refuse a variable's name (never repeating it when it looks like a
    secret), or None."""
    secret = env_name_secret_refusal(name=name)
    if secret is not None:
        return secret
    if not NAME_RE.match(name):
        return (
            "what comes before the first = is not a variable name (letters, digits and _, not "
            "starting with a digit, at most 100; no spaces, quotes or 'export')."
        )
    reason = env_name_behaviour_refusal(name=name)
    if reason is not None:
        return env_name_refused_message(name=name, reason=reason)
    upper = name.upper()
    if upper in RESERVED_NAMES or upper.startswith(RESERVED_PREFIXES):
        return f"{name} is set by the runner and cannot be given here."
    return None


def _name_check(*, name: str, number: int, field: str) -> None:
    problem = _name_problem(name)
    if problem is not None:
        raise InputError(f"Line {number}: {problem}", field=field)


def variable_name_allowed(*, name: str) -> bool:
    """Whether today's rules let a phase's container get this name: a variable saved before a
    rule existed is left out."""
    return _name_problem(name) is None


def _value_check(*, value: str, number: int, field: str) -> None:
    if len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES or "\x00" in value:
        raise InputError(
            f"Line {number}: the value is over {MAX_VALUE_BYTES:,} bytes or holds a NUL character.",
            field=field,
        )
    # The setup log hides a secret only from this length up (common.logging).
    if field == "setup_secrets" and len(value) < REDACT_MIN_CHARS:
        raise InputError(
            f"Line {number}: the secret is shorter than {REDACT_MIN_CHARS} characters, and the "
            f"setup log hides only secrets of at least {REDACT_MIN_CHARS}. Use a longer one, or "
            "put a value that is not secret in the variables.",
            field=field,
        )


def allow_list_parse(*, text: str, field: str) -> list[str]:
    """Host rules as AGENT_EGRESS_ALLOW takes them (one per line or comma-separated)."""
    entries = [e.strip() for e in re.split(r"[\s,]+", text) if e.strip()]
    if len(entries) > MAX_ALLOW_ENTRIES:
        raise InputError(f"At most {MAX_ALLOW_ENTRIES} hosts.", field=field)
    try:
        egress_rules_parse(entries)
    except InputError as exc:
        raise InputError(exc.message, field=field) from None
    return entries


def patterns_parse(*, text: str) -> list[str]:
    """Repository URL patterns, one per line: ``*`` stands for any characters, ``?`` for one.
    Each must be able to match a repository URL a task may use."""
    field = "repo_patterns"
    patterns = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if len(patterns) > MAX_PATTERNS:
        raise InputError(f"At most {MAX_PATTERNS} patterns.", field=field)
    for pattern in patterns:
        _pattern_check(pattern=pattern, field=field)
    return list(dict.fromkeys(patterns))


def _pattern_check(*, pattern: str, field: str) -> None:
    shown = pattern[:80]
    if len(pattern) > MAX_PATTERN_CHARS or not pattern.isprintable() or "[" in pattern:
        raise InputError(
            f"{shown!r} is not a pattern: at most {MAX_PATTERN_CHARS} printable characters, "
            "* and ? as wildcards, no brackets.",
            field=field,
        )
    schemes = ("https://", "file://") if settings.AGENT_ALLOW_LOCAL_REPOS else ("https://",)
    if not pattern.lower().startswith(schemes):
        raise InputError(
            f"{shown!r} matches no repository: repository URLs begin with "
            f"{' or '.join(schemes)}, e.g. https://github.com/your-org/*.",
            field=field,
        )
    # The pattern with its wildcards filled in must be a URL a task could be given.
    sample = pattern.replace("*", "x").replace("?", "x")
    try:
        repository_url_parse(url=sample, local_allowed=settings.AGENT_ALLOW_LOCAL_REPOS)
    except UrlRefused as exc:
        raise InputError(
            f"{shown!r} matches no repository URL a task may use ({exc.message})", field=field
        ) from None


def repo_matches(*, pattern: str, url: str) -> bool:
    """Whether a repository URL matches a pattern: case-insensitive, a trailing ``.git`` or
    ``/`` on either side ignored."""
    return fnmatch.fnmatchcase(_url_key(url), _url_key(pattern))


def _url_key(text: str) -> str:
    text = text.strip().lower().rstrip("/")
    return text.removesuffix(".git")
