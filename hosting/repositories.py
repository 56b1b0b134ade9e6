"""Which repository a URL names on the configured GitHub, or why it is not one.

GitHub.com serves the API at api.github.com and repositories at github.com; GitHub Enterprise
Server serves both on one host (the API under /api/v3). So the web host is derived from
GITHUB_API_URL, and a repository URL on any other host is "not on GitHub" for this server.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from common.netpolicy import UrlRefused, repository_url_parse

from .errors import HostingError, Refusal

_PART = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class RepositoryRef:
    host: str  # lower case, without port
    port: int
    owner: str
    name: str  # without .git

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def clone_url(self) -> str:
        netloc = self.host if self.port == 443 else f"{self.host}:{self.port}"
        return f"https://{netloc}/{self.owner}/{self.name}.git"


def github_web_host(*, api_url: str) -> str:
    """github.com for api.github.com; the API's own host for GitHub Enterprise."""
    host = (urlsplit(api_url).hostname or "").lower()
    return "github.com" if host == "api.github.com" else host


def github_repository_parse(*, url: str, api_url: str) -> RepositoryRef:
    """An https URL of a repository on the configured GitHub (``owner/name`` alone is taken as
    one on that GitHub), or HostingError saying why not. The URL's shape is judged by the one
    repository-URL parser (common.netpolicy); the host must be the configured GitHub's, so
    whether agents may reach it is the operator's choice, judged when git connects."""
    text = url.strip()
    web_host = github_web_host(api_url=api_url)
    if re.fullmatch(r"[^/:@\s]+/[^/:@\s]+", text):
        text = f"https://{web_host}/{text}"
    try:
        parsed = repository_url_parse(url=text, local_allowed=False)
    except UrlRefused as exc:
        if exc.rule == "scheme":
            raise HostingError(
                Refusal.NOT_ON_GITHUB,
                f"Pull requests need an https URL of a repository on {web_host}, "
                "e.g. https://github.com/owner/name.",
            ) from None
        raise HostingError(Refusal.INVALID, exc.message) from None
    if parsed.host != web_host:
        raise HostingError(
            Refusal.NOT_ON_GITHUB,
            f"The repository is on {parsed.host}, not on {web_host}: this server opens pull "
            f"requests on {web_host} only. The task's diff is still shown on its page.",
        )
    segments = [s for s in parsed.path.split("/") if s]
    if len(segments) != 2:
        raise HostingError(
            Refusal.INVALID,
            f"A repository URL on {web_host} has the form https://{web_host}/owner/name.",
        )
    owner, name = segments[0], segments[1].removesuffix(".git")
    if not (_PART.match(owner) and _PART.match(name)) or name in {".", ".."}:
        raise HostingError(
            Refusal.INVALID,
            "The owner or repository name has characters GitHub does not allow "
            "(letters, digits, '-', '_' and '.').",
        )
    return RepositoryRef(host=parsed.host, port=parsed.port, owner=owner, name=name)
