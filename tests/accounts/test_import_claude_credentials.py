"""manage.py import_claude_credentials: a local Claude login stored for a user, never printed."""

import json
import os
import stat
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.local_install import CredentialsNotFound, claude_credentials_read
from oauth_tokens.models import CredentialSource, OAuthCredential

pytestmark = pytest.mark.django_db

ACCESS = "sk-ant-oat01-imported-access-token-0123456789"
REFRESH = "sk-ant-ort01-imported-refresh-token-0123456789"


def cli_file(path: Path, **inner) -> Path:
    data = {
        "accessToken": ACCESS,
        "refreshToken": REFRESH,
        "expiresAt": 4_000_000_000_000,  # milliseconds: 2096-10-02
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max",
        **inner,
    }
    path.write_text(json.dumps({"claudeAiOauth": data, "mcpOAuth": {}}))
    return path


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_claude_credentials", *args, stdout=out)
    return out.getvalue()


def test_imports_a_file_and_prints_what_it_stored_but_not_the_tokens(user, tmp_path):
    path = cli_file(tmp_path / "creds.json")
    output = run("--user", "alice", "--file", str(path))
    assert f"Stored OAuth tokens for alice from {path}." in output
    assert "kind: Refreshable (access + refresh token)" in output
    assert "expires: in " in output
    assert "(2096-" in output
    assert "scopes: user:inference, user:profile" in output
    assert "subscription: max" in output
    assert ACCESS not in output
    assert REFRESH not in output
    credential = OAuthCredential.objects.get(owner=user)
    assert credential.source == CredentialSource.IMPORTED
    assert credential.access_token == ACCESS
    assert credential.refresh_token == REFRESH


def test_says_when_oauth_is_off_and_what_the_next_task_uses(user, tmp_path):
    output = run("--user", "alice", "--file", str(cli_file(tmp_path / "c.json")))
    assert "Claude OAuth is off for this user" in output
    assert "Next task: None: tasks cannot start." in output


def test_reads_the_clis_default_location(user, tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path))
    cli_file(tmp_path / ".credentials.json")
    output = run("--user", "alice")
    assert f"from {tmp_path / '.credentials.json'}" in output
    assert OAuthCredential.objects.filter(owner=user).exists()


def test_falls_back_to_home_dot_claude(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".claude").mkdir()
    cli_file(tmp_path / ".claude" / ".credentials.json")
    raw, origin = claude_credentials_read(platform="linux")
    assert origin == str(tmp_path / ".claude" / ".credentials.json")
    assert ACCESS.encode() in raw


def test_a_missing_file_says_where_it_looked(user, tmp_path):
    with pytest.raises(CommandError, match=r"There is no file at .*nope\.json\. Log in with"):
        run("--user", "alice", "--file", str(tmp_path / "nope.json"))


def test_unusable_content_is_refused_with_the_parsers_message_and_nothing_is_stored(user, tmp_path):
    path = cli_file(tmp_path / "c.json", scopes=["user:profile"])
    with pytest.raises(CommandError) as error:
        run("--user", "alice", "--file", str(path))
    assert "cannot be used: claudeAiOauth.scopes: The scopes do not include user:inference" in str(
        error.value
    )
    assert ACCESS not in str(error.value)
    assert not OAuthCredential.objects.filter(owner=user).exists()


def test_an_unknown_user_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="There is no user named 'nobody'"):
        run("--user", "nobody", "--file", str(cli_file(tmp_path / "c.json")))


def test_replaces_existing_tokens(user, tmp_path, make_credential):
    make_credential(user)
    run("--user", "alice", "--file", str(cli_file(tmp_path / "c.json")))
    assert OAuthCredential.objects.get(owner=user).access_token == ACCESS


def fake_security(bin_dir: Path, *, stdout: str = "", exit_code: int = 0) -> None:
    """A stand-in for macOS's `security` that answers like the real one."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "security"
    args_log = bin_dir / "args.txt"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{args_log}"\n'
        f"printf '%s' '{stdout}'\n"
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_on_macos_reads_the_keychain(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_security(bin_dir, stdout=json.dumps({"claudeAiOauth": {"accessToken": ACCESS}}))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    raw, origin = claude_credentials_read(platform="darwin")
    assert origin == 'the macOS Keychain ("Claude Code-credentials")'
    assert json.loads(raw)["claudeAiOauth"]["accessToken"] == ACCESS
    assert (bin_dir / "args.txt").read_text().split("\n")[:4] == [
        "find-generic-password",
        "-s",
        "Claude Code-credentials",
        "-w",
    ]


def test_on_macos_without_a_keychain_entry_uses_the_file_or_says_so(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_security(bin_dir, exit_code=44)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path))
    with pytest.raises(CredentialsNotFound, match='Keychain has no "Claude Code-credentials"'):
        claude_credentials_read(platform="darwin")
    cli_file(tmp_path / ".credentials.json")
    _raw, origin = claude_credentials_read(platform="darwin")
    assert origin == str(tmp_path / ".credentials.json")
