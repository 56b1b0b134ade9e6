"""A hostile agent, through the whole product: the probe image (agent/test/probe.sh) runs as the
task's `claude`, hunts for secrets the way an attacker would (environment, every readable file,
/proc/*/environ and cmdline) and prints what it finds hex-encoded, so no redaction catches it;
then tries the network. For every auth method, including the server's own global key and global
OAuth, it finds only the task's placeholder: no real token or key ever enters the container."""

from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from accounts.selectors import preferences_get
from oauth_tokens.formats import credential_input_parse
from oauth_tokens.services import credential_store
from tasks.models import TaskStatus
from tasks.services import task_create
from tests.agent_image.helpers import make_bare_repo
from tests.agent_image.probe import ProbeReport
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.fakes.git_http import GitHttpServer
from tests.fakes.loopback import LoopbackServer
from tests.tasks.conftest import set_api_key

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

SERVER_KEY = "sk-ant-api03-the-servers-own-global-key-probe-0001"
GLOBAL_ACCESS = "sk-ant-oat01-the-servers-global-oauth-access-probe-0002"
USER_KEY = "sk-ant-api03-the-users-own-key-probe-0003"
SETUP_TOKEN = "sk-ant-oat01-the-users-setup-token-probe-0004-abcdefghij"
USER_SECRET = "users-own-registry-token-probe-0005"


@pytest.fixture
def probe_env(agent_settings, probe_image, oauth_settings, monkeypatch):
    """Tasks run the probe; the server holds a global API key (in its settings and its own
    process environment) whatever the method, so every run also checks that key stays out."""
    with FakeAnthropicAPI() as api:
        agent_settings.AGENT_IMAGE = probe_image
        # The probe reads all of stdin as its prompt: it takes no stream-json messages.
        agent_settings.AGENT_MESSAGES = False
        # A few seconds of hex dumps; the run's own limit comes well before the test's, so a
        # probe that never ends fails as a timed-out task, with its log.
        agent_settings.AGENT_TIMEOUT_SECONDS = 120
        agent_settings.ANTHROPIC_API_URL = api.url
        agent_settings.ANTHROPIC_API_KEY = SERVER_KEY
        monkeypatch.setenv("ANTHROPIC_API_KEY", SERVER_KEY)
        yield agent_settings


def _user_oauth(user, make_credential, settings, token_server):
    prefs = preferences_get(user=user)
    prefs.use_oauth = True
    prefs.save()
    credential = make_credential(user, expires_in=3600)
    return "oauth", [credential.access_token, credential.refresh_token]


def _user_setup_token(user, make_credential, settings, token_server):
    credential_store(owner=user, parsed=credential_input_parse(raw=SETUP_TOKEN))
    prefs = preferences_get(user=user)
    prefs.use_oauth = True
    prefs.save()
    return "oauth", [SETUP_TOKEN]


def _user_api_key(user, make_credential, settings, token_server):
    set_api_key(user, USER_KEY)
    return "api_key", [USER_KEY]


def _global_api_key(user, make_credential, settings, token_server):
    return "api_key", []  # SERVER_KEY is checked in every case


def _global_oauth(user, make_credential, settings, token_server):
    refresh = token_server.issue()
    settings.CLAUDE_USE_OAUTH = True
    settings.CLAUDE_ACCESS_TOKEN = GLOBAL_ACCESS
    settings.CLAUDE_REFRESH_TOKEN = refresh
    settings.CLAUDE_EXPIRES_AT = "2099-01-01T00:00:00Z"
    return "oauth", [GLOBAL_ACCESS, refresh]


METHODS = {
    "user_oauth": _user_oauth,
    "user_setup_token": _user_setup_token,
    "user_api_key": _user_api_key,
    "global_api_key": _global_api_key,
    "global_oauth": _global_oauth,
}


@pytest.mark.parametrize("method", METHODS)
def test_the_probe_finds_no_real_credential(
    method, probe_env, user, local_repo, make_credential, token_server, placeholders
):
    expected_method, secrets = METHODS[method](user, make_credential, probe_env, token_server)
    secrets = [*secrets, SERVER_KEY]
    prefs = preferences_get(user=user)
    prefs.agent_env = {"MY_REGISTRY_TOKEN": USER_SECRET}
    prefs.save()

    task = task_create(owner=user, repo_url=local_repo, prompt="probe everything")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log[-3000:])
    assert task.auth_method == expected_method

    # The diff holds every finding (PROBE_FINDINGS.txt); the log the same, as far as it goes.
    report = ProbeReport.parse(task.diff)
    logged = ProbeReport.parse(task.log)
    assert report.found
    assert logged.found
    assert not task.diff_truncated, "findings cut: raise AGENT_DIFF_MAX_BYTES for this test"
    # It does find what is there: the placeholder, and the user's own variable (theirs).
    [placeholder] = placeholders
    assert report.where(placeholder), "the probe must find the placeholder it was given"
    assert report.where(USER_SECRET)
    assert report.env().get("MY_REGISTRY_TOKEN") == USER_SECRET
    if expected_method == "oauth":
        assert (
            "file",
            "/home/agent/.claude/.credentials.json",
        ) in report.where(placeholder)
        assert "CLAUDE_ACCESS_TOKEN" not in report.env()  # the file only, as the CLI reads it
        assert "CLAUDE_REFRESH_TOKEN" not in report.env()
    else:
        assert report.env()["ANTHROPIC_API_KEY"] == placeholder
    # It finds no real credential: not decoded, not as hex, not in plain text.
    for secret in secrets:
        assert not report.contains(secret), report.where(secret)
        assert not logged.contains(secret), logged.where(secret)
        for text in (task.diff, task.log):
            assert secret not in text
            assert secret.encode().hex() not in text


class _Recorder(LoopbackServer[tuple[str, str, dict[str, str]]]):
    """A loopback HTTP server that answers a marker and records what it got."""

    name = "probe-target"


class _RecorderHandler(BaseHTTPRequestHandler):
    owner: _Recorder

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.owner._record(
            (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        )
        body = b"REACHED-THE-ALLOWED-TEST-HOST\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


_Recorder.handler = _RecorderHandler


def test_the_probe_reaches_only_what_the_egress_rules_allow(
    probe_env, user, local_repo, tmp_path, make_credential, token_server
):
    """Refused, each with its log line: the host's loopback, a private address, the metadata
    address, a host not on the allow list, the model API through a tunnel. Reached: an allowed
    loopback test host through CONNECT and plain HTTP, and a git clone over the proxy."""
    set_api_key(user, USER_KEY)
    git_root = tmp_path / "git"
    git_root.mkdir()
    served = tmp_path / "served"
    served.mkdir()
    bare = make_bare_repo(served, {"README.md": "cloned through the gateway\n"})
    bare.rename(git_root / "probe.git")
    with (
        _Recorder() as allowed,
        _Recorder() as host_only,
        GitHttpServer(git_root) as git,
    ):
        api_port = int(probe_env.ANTHROPIC_API_URL.rsplit(":", 1)[1])
        probe_env.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = [
            f"127.0.0.1:{allowed.port}",
            f"127.0.0.1:{git.port}",
        ]
        targets = {
            "loopback": f"127.0.0.1:{host_only.port}",
            "private": "10.0.0.1:443",
            "metadata": "169.254.169.254:80",
            "not_allowed": "not-on-the-list.invalid:443",
            "model_api": f"127.0.0.1:{api_port}",
            "allowed": f"127.0.0.1:{allowed.port}",
        }
        prompt = " ".join(
            [
                f"PROBE_DIRECT:{host_only.port}",
                *(f"PROBE_CONNECT:{t}" for t in targets.values()),
                f"PROBE_HTTP:http://127.0.0.1:{allowed.port}/plain",
                f"PROBE_GIT:{git.url_for('probe.git')}",
            ]
        )
        task = task_create(owner=user, repo_url=local_repo, prompt=prompt)
        task.refresh_from_db()
        seen_allowed, seen_host_only, seen_git = allowed.requests, host_only.requests, git.requests
        git_url = git.url_for("probe.git")

    assert task.status == TaskStatus.SUCCEEDED, (task.error_message, task.log[-3000:])
    report = ProbeReport.parse(task.diff)

    # The container's own loopback is not the host's.
    assert report.net("direct", targets["loopback"])[0] == "refused"
    assert seen_host_only == []
    # Each refusal: a 403 to the probe and one line in the task log.
    refusals = {
        "loopback": f"egress refused: {targets['loopback']} (loopback address)",
        "private": "egress refused: 10.0.0.1:443 (private address)",
        "metadata": "egress refused: 169.254.169.254:80 (cloud metadata address)",
        "not_allowed": "egress refused: not-on-the-list.invalid:443 (not on the allow list)",
        "model_api": f"egress refused: {targets['model_api']} (the model API is reached through "
        "the gateway, not a tunnel)",
    }
    for name, line in refusals.items():
        verdict, detail = report.net("connect", targets[name])
        assert verdict == "refused", (name, detail)
        assert "403" in detail, (name, detail)
        assert f"[gateway] {line}" in task.log, (name, task.log[-3000:])
    # The allowed loopback test host (test-only setting) is reached through the tunnel.
    verdict, detail = report.net("connect", targets["allowed"])
    assert verdict == "ok", detail
    assert "REACHED-THE-ALLOWED-TEST-HOST" in detail, detail
    verdict, detail = report.net("http", f"http://{targets['allowed']}/plain")
    assert verdict == "ok", detail
    assert "REACHED-THE-ALLOWED-TEST-HOST" in detail, detail
    assert [path for _, path, _ in seen_allowed] == ["/", "/plain"]
    for _, _, headers in seen_allowed:  # the proxy adds no real credential on the way out
        assert USER_KEY not in str(headers)
        assert SERVER_KEY not in str(headers)
    # git clone over the proxy from a loopback git http-backend.
    verdict, detail = report.net("git", git_url)
    assert verdict == "ok", detail
    assert "initial" in detail, detail
    assert any("git-upload-pack" in path for _, path in seen_git)
