"""Reading a local Claude Code installation's login: the CLI's credentials file, or on macOS the
Keychain entry the CLI writes (see docs/claude-cli-contract.md#credentials-file).

Only reads; storing it for a user is accounts.services.credential_import.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from oauth_tokens.formats import MAX_INPUT_BYTES

KEYCHAIN_SERVICE = "Claude Code-credentials"


class CredentialsNotFound(Exception):
    """No Claude credentials where we looked. The message says where and what to do."""


def claude_credentials_default_path() -> Path:
    """Where the CLI keeps its login: $CLAUDE_CONFIG_DIR/.credentials.json, else ~/.claude/."""
    config_dir = os.environ.get("CLAUDE_CONFIG_DIR")
    base = Path(config_dir).expanduser() if config_dir else Path.home() / ".claude"
    return base / ".credentials.json"


def _credentials_file_read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            # One byte over the parser's limit is enough for it to say the file is too big.
            return handle.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise CredentialsNotFound(
            f"There is no file at {path}. Log in with `claude` on this machine first, or give "
            "the file with --file."
        ) from None
    except OSError as exc:
        raise CredentialsNotFound(f"Could not read {path}: {exc.strerror}.") from None


def _keychain_read() -> bytes:
    security = shutil.which("security")
    if security is None:
        raise CredentialsNotFound("The macOS `security` tool was not found.")
    try:
        completed = subprocess.run(  # fixed arguments, no shell
            [security, "find-generic-password", "-s", KEYCHAIN_SERVICE, "-w"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CredentialsNotFound(
            "The Keychain did not answer in time (was a password prompt left open?)."
        ) from None
    if completed.returncode != 0:
        raise CredentialsNotFound(
            f'The Keychain has no "{KEYCHAIN_SERVICE}" entry. Log in with `claude` on this Mac '
            "first, or give a file with --file."
        )
    return completed.stdout


def claude_credentials_read(
    *, path: Path | None = None, platform: str | None = None
) -> tuple[bytes, str]:
    """The CLI's stored login and where it came from: the given file; else, on macOS, the
    Keychain; else the CLI's credentials file."""
    if path is not None:
        return _credentials_file_read(path), str(path)
    if (platform or sys.platform) == "darwin":
        try:
            return _keychain_read(), f'the macOS Keychain ("{KEYCHAIN_SERVICE}")'
        except CredentialsNotFound:
            default = claude_credentials_default_path()
            if not default.exists():
                raise
    default = claude_credentials_default_path()
    return _credentials_file_read(default), str(default)
