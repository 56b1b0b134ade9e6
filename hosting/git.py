"""git on the worker: clone a repository, and push commits read back from a git bundle.

Each git run gets the environment hosting.git_env builds (the token for that one process only,
through askpass; no config, hooks or helpers of the worker; curl pinned to checked addresses);
git's stderr is redacted before anyone sees it.
"""

import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from common.logging import REDACTED, secrets_redact

from .bundle import BundleContents, BundleLimits, bundle_read
from .errors import HostingError, Refusal
from .git_env import LOCAL_REMOTE, git_environment, git_remote_parse
from .reach import unresolved_message

logger = logging.getLogger("hosting.git")

RESULT_REF = "refs/claude-runner/result"


@dataclass(frozen=True)
class ClonedRepository:
    path: Path
    head: str  # the commit checked out
    branch: str  # the branch checked out (the remote's default when none was asked for)


@dataclass(frozen=True)
class PushResult:
    branch: str
    head: str  # the commit the branch now points at
    commits: int  # new commits pushed


def _redact(text: str, token: str) -> str:
    if token:
        text = text.replace(token, REDACTED)
    return secrets_redact(text).strip()


def _git(
    args: list[str],
    *,
    env: dict[str, str],
    cwd: Path | None = None,
    timeout: float | None = None,
    stdin: BinaryIO | None = None,
) -> subprocess.CompletedProcess[str]:
    """One git command in ``env``, stopped after ``timeout`` seconds (by default the hosting
    git timeout)."""
    limit = timeout if timeout is not None else settings.HOSTING_GIT_TIMEOUT_SECONDS
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise HostingError(
            Refusal.UNREACHABLE,
            f"git {args[0]} took longer than {limit:g} seconds and was stopped.",
        ) from None


def _local_git(args: list[str], *, cwd: Path) -> str:
    """git on the worker's own clone, no network: the plain answer or HostingError."""
    with git_environment(LOCAL_REMOTE, "") as env:
        done = _git(args, env=env, cwd=cwd)
    if done.returncode != 0:
        raise HostingError(Refusal.GIT_FAILED, f"git {args[0]} failed: {_redact(done.stderr, '')}")
    return done.stdout.strip()


def _git_said(stderr: str) -> str:
    """The most telling line of git's complaint: the host's own words first."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    remote = [line[7:].strip() for line in lines if line.startswith("remote:") and line[7:].strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (remote or fatal or lines)[0][:300]


def git_refusal(stderr: str, *, action: str, had_token: bool) -> HostingError:
    """git's complaint (already redacted) as the refusal a user sees."""
    low = stderr.lower()
    said = f" (git said: {_git_said(stderr)})" if stderr.strip() else ""
    if "protected branch" in low or "gh006" in low or "protected ref" in low:
        return HostingError(
            Refusal.BRANCH_PROTECTED,
            f"The branch is protected on the host, so the push was refused{said}.",
        )
    if "workflow" in low and ("scope" in low or "permission" in low):
        return HostingError(
            Refusal.NO_PERMISSION,
            "The changes touch .github/workflows, which your token may not change: give it the "
            f"Workflows permission or leave those files alone{said}.",
        )
    if "error: 403" in low or "permission to" in low or "denied" in low:
        return HostingError(
            Refusal.NO_PERMISSION,
            f"Your token may not {action} this repository: give it Contents: read and write{said}.",
        )
    if "error: 401" in low or "authentication failed" in low or "could not read username" in low:
        if had_token:
            return HostingError(
                Refusal.TOKEN_INVALID,
                f"The git host refused your token for this repository (wrong, expired or "
                f"revoked): save a new one on the Code agent settings page{said}.",
            )
        return HostingError(
            Refusal.NO_TOKEN,
            "The repository needs a token (it is private or the host asks for one): connect "
            "GitHub on the Code agent settings page.",
        )
    if "not found" in low and "remote branch" in low:
        return HostingError(Refusal.INVALID, f"The branch does not exist in the repository{said}.")
    if "not found" in low or "error: 404" in low or "does not appear to be a git" in low:
        return HostingError(
            Refusal.REPOSITORY_NOT_FOUND,
            f"No repository at that URL (or your token cannot see it){said}.",
        )
    if "non-fast-forward" in low or "fetch first" in low or "[rejected]" in low:
        return HostingError(
            Refusal.INVALID,
            f"The branch on the host has commits the task did not start from; the push was "
            f"refused rather than overwrite them{said}.",
        )
    return _unreachable(stderr, said=said) or HostingError(
        Refusal.GIT_FAILED, f"git could not {action} the repository{said}."
    )


def _unreachable(stderr: str, *, said: str) -> HostingError | None:
    """A network failure: a name without an address is the server's DNS or network, and says so."""
    if unresolved := re.search(r"could not resolve host: ([^\s']+)", stderr, re.IGNORECASE):
        return HostingError(Refusal.UNREACHABLE, unresolved_message(unresolved[1]) + said)
    low = stderr.lower()
    if "could not resolve" in low or "connect" in low or "timed out" in low or "ssl" in low:
        return HostingError(Refusal.UNREACHABLE, f"Could not reach the git host{said}.")
    return None


def repository_clone(
    *,
    url: str,
    branch: str,
    token: str,
    dest: Path,
    commit: str = "",
    checkout: bool = True,
) -> ClonedRepository:
    """Clone ``url`` into ``dest`` (which must not exist yet): ``branch``, or the remote's
    default when empty; or exactly ``commit`` when given (a follow-up push needs the very
    revision a task started from). ``token`` may be empty for public repositories.
    ``checkout=False``: only .git, its HEAD at the commit (the files are checked out where the
    tree is used)."""
    remote = git_remote_parse(url=url)
    if branch.startswith("-"):
        raise HostingError(Refusal.INVALID, "A branch name may not start with '-'.")
    if commit and not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        raise HostingError(Refusal.INVALID, "Not a full commit id.")
    shallow = [] if remote.local else ["--depth", "1"]  # the task needs one revision
    with git_environment(remote, token) as env:
        if commit:
            dest.mkdir(parents=True)
            _git(["init", "--quiet", str(dest)], env=env)
            done = _git(
                ["fetch", "--quiet", "--no-tags", *shallow, "--", remote.url, commit],
                env=env,
                cwd=dest,
            )
            if done.returncode == 0:
                done = _git(_head_to(commit, checkout=checkout), env=env, cwd=dest)
        else:
            args = ["clone", "--quiet", "--no-tags", "--single-branch", *shallow]
            args += [] if checkout else ["--no-checkout"]
            args += ["--branch", branch] if branch else []
            done = _git([*args, "--", remote.url, str(dest)], env=env)
    if done.returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        stderr = _redact(done.stderr, token)
        logger.warning("git clone of %s failed: %s", _redact(url, token), stderr)
        raise git_refusal(stderr, action="read", had_token=bool(token))
    # A fetched commit is the full id asked for: git resolved it to set HEAD.
    head = commit or _local_git(["rev-parse", "HEAD"], cwd=dest)
    checked_out = "" if commit else _local_git(["symbolic-ref", "--short", "HEAD"], cwd=dest)
    logger.info("Cloned %s (%s) at %s", _redact(url, token), checked_out or "commit", head[:12])
    return ClonedRepository(path=dest, head=head, branch=checked_out)


def _head_to(commit: str, *, checkout: bool) -> list[str]:
    """The git command that detaches HEAD at ``commit``, its files checked out or (no
    ``checkout``) only HEAD moved, which fails as well for a commit the clone does not have."""
    if checkout:
        return ["checkout", "--quiet", "--detach", commit]
    return ["update-ref", "--no-deref", "HEAD", commit]


def _bundle_limits() -> BundleLimits:
    return BundleLimits(
        max_bytes=settings.AGENT_BUNDLE_MAX_BYTES,
        max_objects=settings.HOSTING_BUNDLE_MAX_OBJECTS,
        max_object_bytes=settings.HOSTING_BUNDLE_MAX_OBJECT_BYTES,
        max_total_bytes=settings.HOSTING_BUNDLE_MAX_TOTAL_BYTES,
    )


def bundle_check(*, bundle: Path, repo: Path | None) -> BundleContents:
    """What the agent's bundle holds, checked within limits (hosting.bundle: its size before a
    byte is read, objects before they are inflated) and, given the clone ``repo`` it builds on,
    by ``git bundle verify`` (the clone has what its commits build on). Raises HostingError
    (GIT_FAILED) saying why it is not usable."""
    contents = bundle_read(path=bundle, limits=_bundle_limits())
    if repo is None:
        return contents
    with git_environment(LOCAL_REMOTE, "") as env:
        verify = _git(
            ["bundle", "verify", "--quiet", str(bundle)],
            env=env,
            cwd=repo,
            timeout=settings.HOSTING_BUNDLE_TIMEOUT_SECONDS,
        )
    if verify.returncode != 0:
        raise HostingError(
            Refusal.GIT_FAILED,
            "The agent's commits could not be read back (the bundle is not valid for "
            "the cloned revision).",
        )
    return contents


def _bundle_unpack(*, repo: ClonedRepository, bundle: Path) -> str:
    """The agent's commits from ``bundle`` into the clone, returning the commit they end at.

    First checked (bundle_check: within limits, then ``git bundle verify``), then unpacked by
    ``index-pack --strict`` into a quarantine repository that borrows the clone's objects:
    git's object check (fsck) on exactly what the bundle brings, which git before 2.43 skips
    on a bundle fetch. Only a clean pack moves into the clone."""
    contents = bundle_check(bundle=bundle, repo=repo.path)
    timeout = settings.HOSTING_BUNDLE_TIMEOUT_SECONDS
    objects = repo.path / ".git" / "objects"
    quarantine = Path(tempfile.mkdtemp(prefix="quarantine-", dir=repo.path / ".git"))
    try:
        with git_environment(LOCAL_REMOTE, "") as env:
            hash_name = "sha256" if contents.hash_size == 32 else "sha1"
            made = _git(
                ["init", "--quiet", "--bare", f"--object-format={hash_name}", str(quarantine)],
                env=env,
                timeout=timeout,
            )
            if made.returncode != 0:
                raise HostingError(
                    Refusal.GIT_FAILED, f"git init failed: {_redact(made.stderr, '')}"
                )
            (quarantine / "objects" / "info" / "alternates").write_text(f"{objects.resolve()}\n")
            with bundle.open("rb") as pack:
                pack.seek(contents.pack_offset)
                done = _git(
                    ["index-pack", "--stdin", "--fix-thin", "--strict",
                     f"--max-input-size={settings.AGENT_BUNDLE_MAX_BYTES}"],
                    env=env,
                    cwd=quarantine,
                    timeout=timeout,
                    stdin=pack,
                )  # fmt: skip
        if done.returncode != 0:
            said = _git_said(_redact(done.stderr, "")) if done.stderr.strip() else "no reason"
            raise HostingError(
                Refusal.GIT_FAILED,
                f"The agent's commits were not pushed: git's object check refused them ({said}).",
            )
        # .pack before .idx: git sees a pack by its index, which must find the pack in place.
        for part in sorted(
            (quarantine / "objects" / "pack").glob("pack-*"), key=lambda p: p.suffix != ".pack"
        ):
            part.rename(objects / "pack" / part.name)
    finally:
        shutil.rmtree(quarantine, ignore_errors=True)
    return contents.tip


def bundles_check_out(*, repo: ClonedRepository, bundles: list[Path], checkout: bool = True) -> str:
    """Earlier tasks' commits, each bundle built on the one before it (the first on
    ``repo.head``), read in with the same checks as for a push and checked out detached (no
    ``checkout``: only HEAD moved there); the commit they end at. Raises HostingError when one
    does not build on what came before."""
    cwd = repo.path
    head = repo.head
    for bundle in bundles:
        tip = _bundle_unpack(repo=ClonedRepository(cwd, head, repo.branch), bundle=bundle)
        try:
            _local_git(["merge-base", "--is-ancestor", head, tip], cwd=cwd)
        except HostingError:
            raise HostingError(
                Refusal.GIT_FAILED, "The earlier task's commits do not build on its start."
            ) from None
        head = tip
    _local_git(_head_to(head, checkout=checkout), cwd=cwd)
    return head


def branch_push_from_bundle(
    *, repo: ClonedRepository, bundle: Path, url: str, token: str, branch: str
) -> PushResult:
    """Push the commits in ``bundle`` (made in the container on top of ``repo.head``) to
    ``branch`` at ``url``. Never forced: a branch that moved on meanwhile is refused."""
    remote = git_remote_parse(url=url)
    if not branch or branch.startswith("-"):
        raise HostingError(Refusal.INVALID, "No valid branch name to push to.")
    cwd = repo.path
    tip = _bundle_unpack(repo=repo, bundle=bundle)
    _local_git(["update-ref", RESULT_REF, tip], cwd=cwd)
    new_head = _local_git(["rev-parse", RESULT_REF], cwd=cwd)
    try:
        _local_git(["merge-base", "--is-ancestor", repo.head, new_head], cwd=cwd)
    except HostingError:
        raise HostingError(
            Refusal.GIT_FAILED, "The agent's commits do not build on the cloned revision."
        ) from None
    commits = int(_local_git(["rev-list", "--count", f"{repo.head}..{new_head}"], cwd=cwd))
    if commits == 0:
        raise HostingError(
            Refusal.INVALID, "The task made no commits, so there is nothing to push."
        )
    with git_environment(remote, token) as env:
        done = _git(
            ["push", "--quiet", "--", remote.url, f"{RESULT_REF}:refs/heads/{branch}"],
            env=env,
            cwd=cwd,
        )
    if done.returncode != 0:
        stderr = _redact(done.stderr, token)
        logger.warning("git push to %s failed: %s", _redact(url, token), stderr)
        raise git_refusal(stderr, action="push to", had_token=bool(token))
    logger.info("Pushed %s commit(s) to %s at %s", commits, branch, new_head[:12])
    return PushResult(branch=branch, head=new_head, commits=commits)
