"""`manage.py refresh_tokens` against a real token server on loopback.

The command refreshes in worker threads, which read committed rows only: hence transaction=True.
"""

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from oauth_tokens.management.commands import refresh_tokens as command_module
from oauth_tokens.models import CredentialStatus, OAuthCredential
from oauth_tokens.selectors import credentials_refresh_targets
from oauth_tokens.services import credential_ensure_fresh

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def json(self) -> dict:
        return json.loads(self.out)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(*args: str, tty: bool = False) -> Run:
    out, err = (_Tty() if tty else io.StringIO()), io.StringIO()
    try:
        call_command("refresh_tokens", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    return Run(code, out.getvalue(), err.getvalue())


def _fresh(credential: OAuthCredential) -> OAuthCredential:
    return OAuthCredential.objects.get(pk=credential.pk)


def _users(*names: str) -> list:
    return [get_user_model().objects.create_user(username=name) for name in names]


def test_refreshes_due_credentials_and_saves_the_rotation(
    oauth_settings, token_server, make_credential
):
    alice, bob, carol = _users("alice", "bob", "carol")
    expired = make_credential(alice, expires_in=-60)
    expiring = make_credential(bob, expires_in=120)  # inside the 300 s buffer
    later = make_credential(carol, expires_in=3600)
    old_refresh = {c.pk: c.refresh_token for c in (expired, expiring)}

    result = run()

    assert result.code == 0, result.err
    assert token_server.request_count == 2
    for credential in (expired, expiring):
        saved = _fresh(credential)
        grant = token_server.grants[old_refresh[credential.pk]]
        assert saved.refresh_token == grant["refresh_token"] != old_refresh[credential.pk]
        assert saved.access_token == grant["access_token"]
        assert not token_server.is_valid(old_refresh[credential.pk])
        assert saved.status == CredentialStatus.VALID
        assert saved.refresh_count == 1
        assert saved.expires_at is not None
        assert saved.expires_at > timezone.now() + timedelta(hours=7)
    assert _fresh(later).refresh_count == 0
    # Not a terminal: plain lines, then the summary.
    assert f"refreshed alice (credential {expired.pk})" in result.out
    assert "Refreshed 2, skipped 0, failed 0 of 2 credential(s)" in result.out
    assert "sk-ant-" not in result.out + result.err


def test_runs_from_a_thread_that_already_runs_an_event_loop(
    oauth_settings, token_server, make_credential, monkeypatch
):
    # An async server's thread, or Playwright's sync API, has a loop running: asyncio.run
    # would refuse to nest, so the batch must still refresh from there.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    (alice,) = _users("alice")
    credential = make_credential(alice, expires_in=-60)
    old_refresh = credential.refresh_token

    async def inside_a_loop() -> Run:
        return run()

    result = asyncio.run(inside_a_loop())

    assert result.code == 0, result.err
    assert token_server.request_count == 1
    assert _fresh(credential).refresh_token == token_server.grants[old_refresh]["refresh_token"]


def test_mixed_failures_are_summarised_with_reasons_and_exit_1(
    oauth_settings, token_server, make_credential
):
    alice, bob, carol = _users("alice", "bob", "carol")
    flaky = make_credential(alice, expires_in=-120)  # soonest: refreshed first
    revoked = make_credential(bob, expires_in=-60)
    healthy = make_credential(carol, expires_in=60)
    token_server.revoke(revoked.refresh_token)
    token_server.fail_next(503, times=oauth_settings.CLAUDE_OAUTH_MAX_ATTEMPTS)

    result = run("--concurrency", "1")

    assert result.code == 1
    assert "Refreshed 1, skipped 0, failed 2 of 3" in result.out
    assert f"alice (credential {flaky.pk}): OAuth token endpoint failed after 3" in result.out
    assert "HTTP 503" in result.out
    assert f"bob (credential {revoked.pk}): OAuth token endpoint said invalid_grant" in result.out
    assert "[permanent: the user must save new tokens]" in result.out
    assert "2 credential(s) failed to refresh" in result.err
    assert _fresh(flaky).status == CredentialStatus.REFRESH_FAILED
    assert _fresh(revoked).status == CredentialStatus.INVALID
    assert _fresh(healthy).refresh_count == 1


def test_dry_run_sends_nothing_and_writes_nothing(oauth_settings, token_server, make_credential):
    (alice,) = _users("alice")
    credential = make_credential(alice, expires_in=-60)
    before = _fresh(credential)

    result = run("--dry-run")
    as_json = run("--dry-run", "--json").json

    assert result.code == 0
    assert f"would refresh alice (credential {credential.pk}): expired" in result.out
    assert "Dry run: 1 credential(s) would be refreshed." in result.out
    assert as_json["dry_run"] is True
    assert as_json["selected"] == 1
    assert as_json["results"][0]["outcome"] == "would_refresh"
    assert token_server.request_count == 0
    after = _fresh(credential)
    assert (after.refresh_token, after.updated_at) == (before.refresh_token, before.updated_at)


def test_json_summary(oauth_settings, token_server, make_credential):
    alice, bob = _users("alice", "bob")
    ok = make_credential(alice, expires_in=-60)
    bad = make_credential(bob, expires_in=-30)
    token_server.revoke(bad.refresh_token)

    result = run("--json")

    assert result.code == 1
    summary = result.json  # stdout holds the JSON only
    assert summary["mode"] == "window"
    assert summary["within_seconds"] == 300
    assert (summary["selected"], summary["refreshed"], summary["failed"]) == (2, 1, 1)
    assert summary["skipped"] == 0
    assert summary["not_attempted"] == 0
    assert summary["interrupted"] is False
    assert summary["exit_code"] == 1
    by_owner = {r["owner"]: r for r in summary["results"]}
    assert by_owner["alice"] == {
        "credential_id": ok.pk,
        "owner": "alice",
        "outcome": "refreshed",
        "reason": "",
        "permanent": False,
        "error_code": None,
    }
    assert by_owner["bob"]["outcome"] == "failed"
    assert by_owner["bob"]["permanent"] is True
    assert by_owner["bob"]["error_code"] == "invalid_grant"
    assert summary["edge_blocked"] == 0
    assert "invalid_grant" in by_owner["bob"]["reason"]
    assert "sk-ant-" not in result.out


def test_nothing_due_is_a_quiet_success(oauth_settings, token_server, make_credential):
    (alice,) = _users("alice")
    make_credential(alice, expires_in=3600)
    result = run()
    assert result.code == 0
    assert "Nothing to refresh (no credentials due within 300 s)." in result.out
    assert token_server.request_count == 0


def test_within_all_and_user_select_what_is_refreshed(
    oauth_settings, token_server, make_credential
):
    alice, bob, carol, dave = _users("alice", "bob", "carol", "dave")
    in_an_hour = make_credential(alice, expires_in=3600)
    in_a_day = make_credential(bob, expires_in=86000)
    setup_token = make_credential(carol, expires_in=None, refresh=False)
    invalid = make_credential(dave, expires_in=-60, status=CredentialStatus.INVALID)

    within = run("--within", "7200", "--json").json
    assert [r["owner"] for r in within["results"]] == ["alice"]

    one_user = run("--user", "bob", "--json").json  # named users: refreshed now, due or not
    assert one_user["mode"] == "users"
    assert [r["owner"] for r in one_user["results"]] == ["bob"]

    everything = run("--all", "--json").json  # refreshable and not invalid, due or not
    assert {r["owner"] for r in everything["results"]} == {"alice", "bob"}
    assert token_server.request_count == 4
    assert _fresh(in_an_hour).refresh_count == 2
    assert _fresh(in_a_day).refresh_count == 2
    assert _fresh(setup_token).refresh_count == 0
    assert _fresh(invalid).refresh_count == 0


def test_usage_errors_exit_2(oauth_settings, token_server, make_credential):
    (alice,) = _users("alice")
    make_credential(alice, expires_in=-60)
    unknown = run("--user", "nobody")
    assert unknown.code == 2
    assert "No refreshable credential for: nobody" in unknown.err
    assert run("--concurrency", "0").code == 2
    assert run("--within", "-1").code == 2
    with pytest.raises(CommandError):  # argparse: --all and --within exclude each other
        call_command("refresh_tokens", "--all", "--within", "10")
    assert token_server.request_count == 0


def test_progress_bar_on_a_terminal(oauth_settings, token_server, make_credential):
    for user in _users("alice", "bob", "carol"):
        make_credential(user, expires_in=-60)
    result = run(tty=True)
    assert result.code == 0
    assert "\r[" + "#" * 30 + "] 3/3 100%" in result.out
    assert "refreshed alice" not in result.out  # the bar replaces the per-credential lines
    assert "Refreshed 3, skipped 0, failed 0 of 3" in result.out


def test_refreshes_run_in_parallel(oauth_settings, token_server, make_credential):
    token_server.delay_seconds = 0.3
    users = _users(*(f"user{i}" for i in range(16)))
    for user in users:
        make_credential(user, expires_in=-60)

    started = time.monotonic()
    result = run("--concurrency", "8", "--json")
    elapsed = time.monotonic() - started

    assert result.json["refreshed"] == 16
    assert token_server.request_count == 16
    assert elapsed < 16 * 0.3 / 2  # serially it would take 4.8 s; 8 at a time about 0.6 s


def test_a_task_refreshing_at_the_same_moment_causes_one_request(
    oauth_settings, token_server, make_credential
):
    token_server.delay_seconds = 0.5  # keeps whichever flight wins in the air
    (alice,) = _users("alice")
    credential = make_credential(alice, expires_in=-60)
    outcome: dict = {}

    def command() -> None:
        try:
            outcome["run"] = run("--json")
        finally:
            connection.close()

    thread = threading.Thread(target=command)
    thread.start()
    task = credential_ensure_fresh(credential_id=credential.pk)  # a task starting right now
    thread.join(timeout=30)

    assert token_server.request_count == 1
    assert task.ok
    summary = outcome["run"].json
    assert summary["failed"] == 0
    assert summary["refreshed"] + summary["skipped"] == 1
    saved = _fresh(credential)
    assert saved.refresh_count == 1
    assert task.snapshot is not None
    assert (
        saved.access_token == task.snapshot.access_token == token_server.last_grant["access_token"]
    )


def test_two_hosts_running_it_at_once_refresh_each_credential_once(
    oauth_settings, token_server, make_credential
):
    token_server.delay_seconds = 0.2
    credentials = [make_credential(user, expires_in=-60) for user in _users("a", "b", "c", "d")]
    runs: list[Run] = []
    barrier = threading.Barrier(2)

    def host() -> None:
        try:
            barrier.wait()
            runs.append(run("--json", "--concurrency", "2"))
        finally:
            connection.close()

    threads = [threading.Thread(target=host) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert token_server.request_count == 4
    assert all(run.code == 0 for run in runs)
    assert [_fresh(c).refresh_count for c in credentials] == [1, 1, 1, 1]
    handled = [r for one in runs for r in one.json["results"]]
    assert {r["outcome"] for r in handled} <= {"refreshed", "skipped"}


def test_a_credential_refreshed_elsewhere_after_selection_is_skipped(
    oauth_settings, token_server, make_credential, monkeypatch
):
    alice, bob = _users("alice", "bob")
    make_credential(alice, expires_in=-60)
    other = make_credential(bob, expires_in=-30)

    def select_then_other_host_refreshes(**kwargs):
        targets = credentials_refresh_targets(**kwargs)
        credential_ensure_fresh(credential_id=other.pk)  # another host, between our steps
        return targets

    monkeypatch.setattr(
        command_module, "credentials_refresh_targets", select_then_other_host_refreshes
    )
    result = run()

    assert result.code == 0
    assert "Refreshed 1, skipped 1, failed 0 of 2" in result.out
    assert f"bob (credential {other.pk}): not due any more (refreshed elsewhere)" in result.out
    assert token_server.request_count == 2  # alice's, and the other host's for bob
    assert _fresh(other).refresh_count == 1


def _subprocess_env(token_server) -> dict[str, str]:
    env = {
        **os.environ,
        "TEST_TOKEN_URL": token_server.url,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PYTHONPATH": str(ROOT),
    }
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    return env


# manage.py with the token URL pointed at the fake server (test settings pin it to a dead port).
_MANAGE = (
    "import os, django; django.setup(); from django.conf import settings; "
    "settings.CLAUDE_OAUTH_TOKEN_URL = os.environ['TEST_TOKEN_URL']; "
    "from django.core.management import execute_from_command_line; "
    "execute_from_command_line(['manage.py', 'refresh_tokens', '--concurrency', '2'])"
)


@pytest.mark.deploy  # fresh app processes
def test_ctrl_c_finishes_what_is_in_flight_and_exits_130(
    oauth_settings, token_server, make_credential
):
    token_server.delay_seconds = 1.0
    credentials = [
        make_credential(user, expires_in=-60 + i)
        for i, user in enumerate(_users(*(f"user{i}" for i in range(8))))
    ]
    child = subprocess.Popen(
        [sys.executable, "-c", _MANAGE],
        env=_subprocess_env(token_server),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while token_server.request_count < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert token_server.request_count == 2, "the command never started refreshing"
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)

    assert child.returncode == 130, err
    assert "Stopping: no new refreshes" in err
    assert "Interrupted: 6 credential(s) not attempted." in out
    assert "Refreshed 2, skipped 0, failed 0 of 8" in out
    assert token_server.request_count == 2  # nothing new was started after Ctrl-C
    # Every token the server rotated was saved: no credential lost its chain, no claim is left.
    saved = [_fresh(c) for c in credentials]
    refreshed = [c for c in saved if c.refresh_count == 1]
    assert len(refreshed) == 2
    issued = {grant["refresh_token"] for grant in token_server.grants.values()}
    assert {c.refresh_token for c in refreshed} == issued
    assert all(token_server.is_valid(c.refresh_token) for c in saved)
    assert all(c.refresh_claim == "" for c in saved)
