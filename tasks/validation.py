"""Checks on what a user submits, done before any container exists."""

import re
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from common.errors import InputError
from gateway.egress import egress_policy_from_settings, host_literal_is_forbidden


class TaskInputError(InputError):
    # field None: about the submission as a whole (e.g. the owner's task limits).
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message, field=field)


_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
# Legal for git, but never in a real branch and a classic injection vector: refused too.
_SHELL_CHARS = re.compile(r"[$;`|&<>()'\"!]")


def branch_name_check(*, branch: str) -> str:
    """A branch name as `git check-ref-format --branch` would accept it ("" = default branch)."""
    name = branch.strip()
    if not name:
        return ""
    problem = None
    if len(name) > 255:
        problem = "is longer than 255 characters; git would refuse it"
    elif name.startswith("-"):
        problem = "starts with '-'; git would refuse it"
    elif _BAD_REF_CHARS.search(name):
        problem = (
            "contains a space, a control character or one of ~ ^ : ? * [ \\; git would refuse it"
        )
    elif _SHELL_CHARS.search(name):
        problem = "contains one of $ ; ` | & < > ( ) ' \" !, which this server does not accept"
    elif ".." in name or "@{" in name or "//" in name:
        problem = "contains '..', '@{' or '//'; git would refuse it"
    elif name == "@" or name.startswith("/") or name.endswith(("/", ".")):
        problem = "is '@', or starts with '/', or ends with '/' or '.'; git would refuse it"
    elif any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")):
        problem = "has a part that starts with '.' or ends with '.lock'; git would refuse it"
    if problem:
        raise TaskInputError("branch", f"The branch name {problem}.")
    return name


def repo_url_check(*, url: str) -> str:
    """An https URL (or file:// when local repositories are allowed), without credentials."""
    url = url.strip()
    if not url:
        raise TaskInputError(
            "repo_url", "Enter the repository URL, e.g. https://github.com/you/project.git"
        )
    if len(url) > 2000 or re.search(r"[\x00-\x20\x7f]", url):
        raise TaskInputError("repo_url", "The URL has spaces or control characters in it.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number in range)
    except ValueError:
        # e.g. an unclosed IPv6 bracket: urlsplit refuses it, and must not become a 500.
        raise TaskInputError(
            "repo_url", "This is not a valid URL (check the brackets and the port)."
        ) from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        return _local_repo_check(parts.netloc, parts.path)
    if scheme != "https":
        raise TaskInputError(
            "repo_url",
            "Only https:// repository URLs are accepted (not ssh, git, http or local paths).",
        )
    if parts.username or parts.password or "@" in parts.netloc:
        raise TaskInputError(
            "repo_url",
            "Remove the user name or token from the URL: credentials in a URL would be visible "
            "in the container's settings.",
        )
    try:
        port = parts.port
    except ValueError:
        raise TaskInputError(
            "repo_url", "The port in the URL is not a number from 1 to 65535."
        ) from None
    host = parts.hostname or ""
    # Before the name check: "localhost" and IPv6 literals have no dot either.
    forbidden = host_literal_is_forbidden(host)
    # A loopback git server the test-only setting allows (refused outside the test suite).
    test_host = (host, port or 443) in egress_policy_from_settings().test_loopback
    if forbidden and not test_host:
        raise TaskInputError(
            "repo_url",
            f"Agents cannot reach {host}{f':{port}' if port else ''} (a {forbidden}): they reach "
            "only public hosts. Use the repository's public https URL.",
        )
    if not host or ("." not in host and ":" not in host):
        raise TaskInputError("repo_url", "The URL needs a host name, e.g. https://github.com/...")
    if not parts.path.strip("/"):
        raise TaskInputError("repo_url", "The URL needs the repository path after the host.")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise TaskInputError(
            "repo_url",
            "Remove the ?query or #fragment from the URL: a clone URL needs neither, and a "
            "token in it would be visible in the container's settings.",
        )
    return url


def _local_repo_check(netloc: str, raw_path: str) -> str:
    """file:// only below AGENT_LOCAL_REPOS_ROOT, and only a git repository: the folder is
    mounted into the container, so anything else could expose the server's own files."""
    if not settings.AGENT_ALLOW_LOCAL_REPOS:
        raise TaskInputError(
            "repo_url",
            "Local file:// repositories are turned off on this server; use an https URL.",
        )
    path = Path(raw_path)
    if netloc or not path.is_absolute() or ".." in path.parts:
        raise TaskInputError("repo_url", "Use file:///absolute/path/to/repo.git")
    root = settings.AGENT_LOCAL_REPOS_ROOT
    if not root:
        raise TaskInputError(
            "repo_url", "Local repositories need AGENT_LOCAL_REPOS_ROOT set on the server."
        )
    resolved = path.resolve()
    is_repo = (resolved / "HEAD").is_file() or (resolved / ".git").exists()
    if not resolved.is_relative_to(Path(root).resolve()) or not is_repo:
        # One message for both, so the form does not reveal which server paths exist.
        raise TaskInputError(
            "repo_url", f"No git repository at that path under {root} on this server."
        )
    return f"file://{resolved}"


def prompt_check(*, prompt: str) -> str:
    text = prompt.replace("\r\n", "\n")
    if not text.strip():
        raise TaskInputError("prompt", "Write what the agent should do.")
    if "\x00" in text:
        raise TaskInputError("prompt", "The prompt contains a NUL character.")
    if len(text) > settings.AGENT_PROMPT_MAX_CHARS:
        raise TaskInputError(
            "prompt",
            f"The prompt is {len(text):,} characters; the limit is "
            f"{settings.AGENT_PROMPT_MAX_CHARS:,}.",
        )
    return text
