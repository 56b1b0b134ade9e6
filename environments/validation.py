"""Checks of what a user types into an environment: each raises InputError naming the field and
saying what to fix; none repeats a secret value."""

import fnmatch
import re

from django.conf import settings

from common.errors import InputError
from common.netpolicy import UrlRefused, egress_rules_parse, repository_url_parse

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
# Names the runner sets itself, or that would change what a phase is or where it connects.
RESERVED_PREFIXES = ("AGENT_", "ANTHROPIC_", "CLAUDE_", "DOCKER_")
RESERVED_NAMES = frozenset(
    {
        "HOME",
        "PATH",
        "USER",
        "SHELL",
        "BASH_ENV",
        "ENV",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "REPO_URL",
        "REPO_BRANCH",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
    }
)
MAX_VARIABLES = 50
MAX_VALUE_BYTES = 16 * 1024
MAX_PATTERNS = 20
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
    """``NAME=value`` lines (blank lines and ``#`` comments skipped) as a dict."""
    found: dict[str, str] = {}
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
            raise InputError(f"Line {number}: {name} is given twice.", field=field)
        if len(value.encode()) > MAX_VALUE_BYTES or "\x00" in value:
            raise InputError(
                f"Line {number}: the value of {name} is over {MAX_VALUE_BYTES:,} bytes or holds "
                "a NUL character.",
                field=field,
            )
        found[name] = value
        if len(found) > MAX_VARIABLES:
            raise InputError(f"At most {MAX_VARIABLES} variables.", field=field)
    return found


def _name_check(*, name: str, number: int, field: str) -> None:
    if not NAME_RE.match(name):
        raise InputError(
            f"Line {number}: {name[:40]!r} is not a variable name (letters, digits and _, not "
            "starting with a digit).",
            field=field,
        )
    upper = name.upper()
    if upper in RESERVED_NAMES or upper.startswith(RESERVED_PREFIXES):
        raise InputError(
            f"Line {number}: {name} is set by the runner and cannot be given here.", field=field
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
