"""The environment of one git run on the worker, and the remote it may reach.

How the token reaches git: only through the environment of the one git process that needs it,
read by an askpass helper (a script with no secret in it, answering only for the expected
host). Never on a command line (visible in /proc/*/cmdline and `ps`), in a URL, in a config file
written to disk, or in a log.

How git is confined: a fresh environment (none of the worker's variables, no user or system git
config, no credential helpers, no hooks), https only (file:// only for the development-only
local repositories), no redirects, curl pinned to the addresses the egress rules checked, and
with HOSTING_CA_BUNDLE set, that bundle as the only trust.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from common.netpolicy import UrlRefused, egress_policy_for_agents, repository_url_check

from .errors import HostingError, Refusal
from .reach import git_host_addresses

# What git sends as the user name with a token (GitHub ignores it; this is its documented form).
GIT_USERNAME = "x-access-token"
_ASKPASS = """#!/bin/sh
# claude-runner's git askpass: answers from its environment, only for the expected host.
case "$1" in
  *"//${CLAUDE_RUNNER_GIT_HOST}'"* | *"@${CLAUDE_RUNNER_GIT_HOST}'"*) ;;
  *) exit 1 ;;
esac
case "$1" in
  Username*) printf '%s\\n' "$CLAUDE_RUNNER_GIT_USERNAME" ;;
  Password*) printf '%s\\n' "$CLAUDE_RUNNER_GIT_TOKEN" ;;
  *) exit 1 ;;
esac
"""


@dataclass(frozen=True)
class GitRemote:
    url: str
    host: str
    port: int
    local: bool  # a file:// repository (development and tests only)

    @property
    def netloc(self) -> str:
        return self.host if self.port == 443 else f"{self.host}:{self.port}"


# Runs on the worker's own clone or a bundle: no network, no token.
LOCAL_REMOTE = GitRemote("", "", 0, local=True)


def git_remote_parse(*, url: str) -> GitRemote:
    """The remote git may reach for ``url``, on the rules the task form applies
    (common.netpolicy): HostingError(INVALID) for its shape, EGRESS_REFUSED for its host."""
    try:
        parsed = repository_url_check(
            url=url,
            local_allowed=settings.AGENT_ALLOW_LOCAL_REPOS,
            policy=egress_policy_for_agents(),
        )
    except UrlRefused as exc:
        kind = Refusal.EGRESS_REFUSED if exc.rule == "reach" else Refusal.INVALID
        raise HostingError(kind, exc.message) from None
    return GitRemote(parsed.url, parsed.host, parsed.port, local=parsed.local)


@contextmanager
def git_environment(remote: GitRemote, token: str) -> Iterator[dict[str, str]]:
    """The whole environment of one git run against ``remote`` (see the module's docstring)."""
    scratch = Path(tempfile.mkdtemp(prefix="claude-runner-git-"))
    try:
        askpass = scratch / "askpass.sh"
        askpass.write_text(_ASKPASS)
        askpass.chmod(0o700)
        config = [
            ("credential.helper", ""),  # nothing may store the token
            ("core.hooksPath", os.devnull),
            ("http.followRedirects", "false"),
            ("transfer.fsckObjects", "true"),
            ("protocol.allow", "never"),
            ("protocol.https.allow", "always"),
            # Every clone is thrown away after the task: no background repacking after a fetch.
            ("maintenance.auto", "false"),
            ("gc.auto", "0"),
        ]
        if remote.local:
            config.append(("protocol.file.allow", "always"))
        else:
            addresses = git_host_addresses(host=remote.host, port=remote.port)
            pinned = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
            config.append(("http.curloptResolve", f"{remote.host}:{remote.port}:{pinned}"))
        if settings.HOSTING_CA_BUNDLE:
            # The bundle alone, as for the API (hosting.github): curl would also read the
            # system's CA folder, trusting what the operator replaced, and parse its hundred
            # certificates in every https run (about 50 ms of CPU each).
            no_ca_folder = scratch / "ca-path"
            no_ca_folder.mkdir()
            config.append(("http.sslCAInfo", str(settings.HOSTING_CA_BUNDLE)))
            config.append(("http.sslCAPath", str(no_ca_folder)))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(scratch),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ASKPASS": str(askpass),
            "CLAUDE_RUNNER_GIT_HOST": remote.netloc,
            "CLAUDE_RUNNER_GIT_USERNAME": GIT_USERNAME,
            "CLAUDE_RUNNER_GIT_TOKEN": token,
            "GIT_CONFIG_COUNT": str(len(config)),
        }
        for index, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        yield env
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
