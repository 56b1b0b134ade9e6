"""Clone and push on the worker with real git against the loopback smart-HTTP server (TLS,
basic auth), and where the token may never appear."""

import contextlib
import logging
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from hosting.errors import HostingError, Refusal
from hosting.git import branch_push_from_bundle, git_refusal, repository_clone
from hosting.git_env import git_environment, git_remote_parse
from tests.hosting.conftest import REPO, agent_commit, new_token


def test_private_repository_is_cloned_with_the_token(
    hosting_settings, private_repo, token, tmp_path
):
    cloned = repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "c")
    assert (cloned.path / "src" / "app.py").read_text() == "print('hi')\n"
    assert cloned.branch == "main"
    assert len(cloned.head) == 40


def test_the_token_is_sent_only_after_the_server_asks(
    hosting_settings, private_repo, token, git_server, tmp_path
):
    repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "c")
    first, *rest = git_server.requests
    assert not first.token_given
    assert first.status == 401
    assert rest
    assert all(r.token_given and r.user == "x-access-token" for r in rest)
    assert all(r.authorization_headers <= 1 for r in git_server.requests)


@pytest.mark.parametrize(
    ("given", "kind"),
    [("", Refusal.NO_TOKEN), ("wrong", Refusal.TOKEN_INVALID)],
)
def test_private_repository_without_a_good_token_is_refused(
    hosting_settings, private_repo, tmp_path, given, kind
):
    token = new_token() if given == "wrong" else ""
    with pytest.raises(HostingError) as caught:
        repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "c")
    assert caught.value.kind == kind, caught.value.message
    assert not (tmp_path / "c").exists()


def test_unknown_repository_and_branch_are_named(
    hosting_settings, private_repo, token, git_server, tmp_path
):
    with pytest.raises(HostingError) as caught:
        repository_clone(
            url=git_server.url("acme/nope"), branch="", token=token, dest=tmp_path / "a"
        )
    assert caught.value.kind == Refusal.REPOSITORY_NOT_FOUND
    with pytest.raises(HostingError) as caught:
        repository_clone(url=private_repo, branch="no-such", token=token, dest=tmp_path / "b")
    assert caught.value.kind == Refusal.INVALID
    assert "branch does not exist" in caught.value.message


def test_loopback_is_refused_without_the_test_allowance(
    hosting_settings, private_repo, token, tmp_path
):
    hosting_settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = []
    with pytest.raises(HostingError) as caught:
        repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "c")
    assert caught.value.kind == Refusal.EGRESS_REFUSED
    assert "127.0.0.1" in caught.value.message
    assert "loopback" in caught.value.message


def test_only_https_urls_are_cloned(hosting_settings, token, tmp_path):
    for url in ("http://127.0.0.1:1/a/b.git", "ext::sh -c touch% /tmp/pwned", "-uhttps://x/y"):
        with pytest.raises(HostingError) as caught:
            repository_clone(url=url, branch="", token=token, dest=tmp_path / "c")
        assert caught.value.kind == Refusal.INVALID


# --- where the token must never be ------------------------------------------------------------


class ProcWatcher:
    """Every command line and environment of the processes this test starts, read from /proc
    while they run (git, git-remote-https, the askpass helper)."""

    def __init__(self) -> None:
        self.cmdlines: set[bytes] = set()
        self._stop = threading.Event()
        self._me = os.getpid()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) == self._me:
                    continue
                with contextlib.suppress(OSError):
                    self.cmdlines.add((entry / "cmdline").read_bytes())
            self._stop.wait(0.002)


def test_token_is_never_on_a_command_line_in_config_or_in_logs(
    hosting_settings, private_repo, token, git_server, tmp_path, caplog, monkeypatch
):
    # A git wrapper first on PATH records every argv it is started with.
    wrapper_dir, argv_log = tmp_path / "bin", tmp_path / "argv.log"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "git"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {argv_log}\nexec /usr/bin/git "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{os.environ['PATH']}")
    caplog.set_level(logging.DEBUG)

    with ProcWatcher() as watcher:
        cloned = repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "c")
        bundle = agent_commit(cloned.path, tmp_path / "w", message="change", files={"x.txt": "x\n"})
        branch_push_from_bundle(
            repo=cloned, bundle=bundle, url=private_repo, token=token, branch="claude-runner/1-x"
        )
        git_server.protect(REPO, "main")
        with pytest.raises(HostingError):  # a failure's message and log too
            branch_push_from_bundle(
                repo=cloned, bundle=bundle, url=private_repo, token=token, branch="main"
            )

    assert "clone" in argv_log.read_text()
    assert "push" in argv_log.read_text()
    assert token not in argv_log.read_text()
    assert any(b"git-remote-https" in c or b"remote-https" in c for c in watcher.cmdlines)
    assert not any(token.encode() in c for c in watcher.cmdlines)
    assert token not in (cloned.path / ".git" / "config").read_text()
    for path in (cloned.path / ".git").rglob("*"):
        if path.is_file() and stat.S_ISREG(path.stat().st_mode):
            assert token.encode() not in path.read_bytes(), path
    assert token not in caplog.text
    assert "Cloned" in caplog.text
    assert git_server.branch_head(REPO, "claude-runner/1-x")


def test_worker_environment_does_not_leak_into_git(
    hosting_settings, private_repo, token, tmp_path, monkeypatch
):
    # A hostile or careless worker environment (a config-injecting variable) changes nothing.
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.sshCommand'='touch /tmp/nope'")
    monkeypatch.setenv("GIT_TRACE", str(tmp_path / "trace.log"))
    repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "c")
    assert not (tmp_path / "trace.log").exists()


def _git_config(env: dict[str, str]) -> dict[str, str]:
    count = int(env["GIT_CONFIG_COUNT"])
    return {env[f"GIT_CONFIG_KEY_{n}"]: env[f"GIT_CONFIG_VALUE_{n}"] for n in range(count)}


def test_with_a_ca_bundle_git_trusts_that_bundle_alone(hosting_settings, git_server):
    # As the API client does: the system's CA folder (curl's default) is swapped for an empty
    # one, so a public CA cannot vouch for the operator's private host.
    remote = git_remote_parse(url=git_server.url(REPO))
    with git_environment(remote, "") as env:
        config = _git_config(env)
        assert config["http.sslCAInfo"] == str(git_server.ca_file)
        assert list(Path(config["http.sslCAPath"]).iterdir()) == []
    hosting_settings.HOSTING_CA_BUNDLE = ""
    with git_environment(remote, "") as env:
        config = _git_config(env)
        assert "http.sslCAInfo" not in config
        assert "http.sslCAPath" not in config  # the system's CAs, for github.com


# --- pushing the agent's commits --------------------------------------------------------------


def test_bundle_is_pushed_to_a_new_branch_and_a_follow_up_to_the_same(
    hosting_settings, private_repo, token, git_server, tmp_path
):
    cloned = repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "c1")
    bundle = agent_commit(cloned.path, tmp_path / "w1", message="first", files={"a.txt": "a\n"})
    pushed = branch_push_from_bundle(
        repo=cloned, bundle=bundle, url=private_repo, token=token, branch="claude-runner/7-fix"
    )
    assert pushed.commits == 1
    assert git_server.branch_head(REPO, "claude-runner/7-fix") == pushed.head
    assert git_server.branch_head(REPO, "main") == cloned.head  # untouched

    # The follow-up task starts from the branch and pushes on top of it.
    again = repository_clone(
        url=private_repo, branch="claude-runner/7-fix", token=token, dest=tmp_path / "c2"
    )
    assert again.head == pushed.head
    bundle2 = agent_commit(again.path, tmp_path / "w2", message="second", files={"b.txt": "b\n"})
    branch_push_from_bundle(
        repo=again, bundle=bundle2, url=private_repo, token=token, branch="claude-runner/7-fix"
    )
    assert git_server.log(REPO, "claude-runner/7-fix") == ["second", "first", "initial"]


def test_push_refusals(hosting_settings, private_repo, token, git_server, tmp_path):
    cloned = repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "c")
    bundle = agent_commit(cloned.path, tmp_path / "w", message="m", files={"a.txt": "a\n"})

    def push(branch: str, with_token: str = token) -> HostingError:
        with pytest.raises(HostingError) as caught:
            branch_push_from_bundle(
                repo=cloned, bundle=bundle, url=private_repo, token=with_token, branch=branch
            )
        return caught.value

    git_server.protect(REPO, "main")
    protected = push("main")
    assert protected.kind == Refusal.BRANCH_PROTECTED
    assert "GH006" in protected.message

    reader = new_token()
    git_server.grant(REPO, reader, push=False)
    assert push("feature", reader).kind == Refusal.NO_PERMISSION
    assert push("feature", new_token()).kind == Refusal.TOKEN_INVALID

    # The branch moved on the host since the task started: never overwritten.
    other = repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "o")
    moved = agent_commit(other.path, tmp_path / "wo", message="elsewhere", files={"z": "z\n"})
    branch_push_from_bundle(repo=other, bundle=moved, url=private_repo, token=token, branch="busy")
    assert push("busy").kind == Refusal.INVALID
    assert git_server.log(REPO, "busy")[0] == "elsewhere"


def test_a_bundle_that_does_not_build_on_the_clone_is_refused(
    hosting_settings, private_repo, token, git_server, tmp_path
):
    git_server.repository_create("acme/other", private=False, files={"o.txt": "o\n"})
    stranger = repository_clone(
        url=git_server.url("acme/other"), branch="", token="", dest=tmp_path / "s"
    )
    bundle = agent_commit(stranger.path, tmp_path / "w", message="m", files={"a.txt": "a\n"})
    cloned = repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "c")
    with pytest.raises(HostingError) as caught:
        branch_push_from_bundle(
            repo=cloned, bundle=bundle, url=private_repo, token=token, branch="x"
        )
    assert "could not be read back" in caught.value.message
    assert git_server.branch_head(REPO, "x") is None


def test_public_repository_needs_no_token(hosting_settings, git_server, tmp_path):
    git_server.repository_create("acme/open", private=False)
    cloned = repository_clone(
        url=git_server.url("acme/open"), branch="", token="", dest=tmp_path / "c"
    )
    assert (cloned.path / "README.md").exists()
    assert subprocess.run(["git", "-C", str(cloned.path), "status"], check=False).returncode == 0


def test_a_host_off_the_allow_list_is_refused_before_any_connection(
    hosting_settings, token, tmp_path
):
    hosting_settings.AGENT_EGRESS_ALLOW = ["github.com"]
    with pytest.raises(HostingError) as caught:
        repository_clone(
            url="https://git.example.invalid/a/b.git", branch="", token=token, dest=tmp_path / "c"
        )
    assert caught.value.kind == Refusal.EGRESS_REFUSED
    assert "not on the allow list" in caught.value.message


def test_an_allowed_host_that_does_not_resolve_says_so_not_to_allow_it(
    hosting_settings, token, tmp_path
):
    hosting_settings.AGENT_EGRESS_ALLOW = ["git.example.invalid"]
    with pytest.raises(HostingError) as caught:
        repository_clone(
            url="https://git.example.invalid/a/b.git", branch="", token=token, dest=tmp_path / "c"
        )
    assert caught.value.kind == Refusal.UNREACHABLE
    assert caught.value.message == (
        "git.example.invalid could not be resolved from this server: no DNS or network?"
    )


def test_git_saying_it_could_not_resolve_the_host_is_worded_the_same():
    refusal = git_refusal(
        "fatal: unable to access 'https://github.com/a/b.git/': Could not resolve host: github.com",
        action="read",
        had_token=False,
    )
    assert refusal.kind == Refusal.UNREACHABLE
    assert refusal.message.startswith(
        "github.com could not be resolved from this server: no DNS or network?"
    )


def test_a_commit_is_cloned_by_its_id_after_the_branch_moved_on(
    hosting_settings, private_repo, token, git_server, tmp_path
):
    first = repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "a")
    bundle = agent_commit(first.path, tmp_path / "w", message="later", files={"l.txt": "l\n"})
    branch_push_from_bundle(repo=first, bundle=bundle, url=private_repo, token=token, branch="main")
    again = repository_clone(
        url=private_repo, branch="", token=token, dest=tmp_path / "b", commit=first.head
    )
    assert again.head == first.head
    assert again.branch == ""
    assert not (again.path / "l.txt").exists()
    with pytest.raises(HostingError) as caught:
        repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "c", commit="-x")
    assert caught.value.kind == Refusal.INVALID
