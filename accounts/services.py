"""Account actions: the first admin, and the Code agent settings (validation, saving, status).

Pasted OAuth credentials are validated only by oauth_tokens.formats.credential_input_parse;
this module adds the two other inputs of the settings page (the API key and the agent's extra
environment) and the read-outs the page shows. No function here returns a token or an API key
beyond its last four characters.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

from common.errors import InputError
from oauth_tokens.formats import (
    API_KEY_PREFIX,
    MAX_INPUT_BYTES,
    REFRESH_TOKEN_PREFIX,
    SETUP_TOKEN_PREFIX,
    CredentialKind,
    InputFormat,
    ParsedCredential,
    credential_input_parse,
)
from oauth_tokens.models import CredentialSource, CredentialStatus, OAuthCredential
from oauth_tokens.selectors import credential_for_user, credential_status_compute
from oauth_tokens.services import (
    AuthMethod,
    AuthSource,
    AuthUnavailable,
    auth_method_resolve,
    credential_ensure_fresh,
    credential_expired,
    credential_store,
    refresh_buffer,
)

from .models import UserPreferences
from .selectors import preferences_get

# --- the first admin --------------------------------------------------------------------------


@transaction.atomic
def admin_user_ensure(*, username: str = "admin") -> tuple[str, str | None]:
    """Create the first superuser when none exists. Returns (username, password or None)."""
    user_model = get_user_model()
    existing = user_model.objects.filter(is_superuser=True).order_by("pk").first()
    if existing is not None:
        return existing.get_username(), None
    password = secrets.token_urlsafe(12)
    user_model.objects.create_superuser(username=username, email="", password=password)
    return username, password


# --- validating the other inputs of the settings page -----------------------------------------


class SettingsInputError(InputError):
    """Input the settings page cannot accept."""


# Real keys are about 108 characters; much shorter means it was cut off while copying.
API_KEY_MIN_CHARS = 40
API_KEY_MAX_CHARS = 512


def api_key_parse(*, raw: str) -> str:
    """A pasted Anthropic API key, checked; "" when nothing was given (keep the saved one).

    Messages never quote the input: a secret pasted in the wrong field must not be echoed.
    """
    key = raw.strip()
    if not key:
        return ""
    if key.startswith(SETUP_TOKEN_PREFIX):
        raise SettingsInputError(
            "This is a Claude OAuth token (it starts with sk-ant-oat), not an API key. Paste it "
            "in the Claude OAuth tokens box instead, and leave this field empty."
        )
    if key.startswith(REFRESH_TOKEN_PREFIX):
        raise SettingsInputError(
            "This is a Claude OAuth refresh token (it starts with sk-ant-ort), not an API key. "
            "Paste the whole credentials JSON in the Claude OAuth tokens box instead."
        )
    if key.startswith(("{", "[", '"')):
        raise SettingsInputError(
            "This looks like JSON, not an API key. OAuth credentials go in the Claude OAuth "
            "tokens box; here paste only the key, which starts with sk-ant-api."
        )
    for position, char in enumerate(key, start=1):
        if char.isspace():
            raise SettingsInputError(
                f"The key contains a space or line break (at character {position}). Copy it "
                "again as one line."
            )
        if not (char.isascii() and char.isprintable()):
            raise SettingsInputError(
                f"The key contains a character that is not printable ASCII (at character "
                f"{position}), such as a curly quote or an invisible character. Copy it again "
                "from the Anthropic Console."
            )
    if not key.startswith(API_KEY_PREFIX):
        if "=" in key[:40]:
            raise SettingsInputError(
                "Paste only the key itself (it starts with sk-ant-api), without a variable "
                "name such as ANTHROPIC_API_KEY=."
            )
        raise SettingsInputError(
            "This is not an Anthropic API key: those start with sk-ant-api. Create one in the "
            "Anthropic Console under API keys."
        )
    if len(key) < API_KEY_MIN_CHARS:
        raise SettingsInputError(
            f"The key is only {len(key)} characters long; it looks cut off. Copy the whole key."
        )
    if len(key) > API_KEY_MAX_CHARS:
        raise SettingsInputError(
            f"The key is {len(key):,} characters long; at most {API_KEY_MAX_CHARS} are allowed. "
            "Copy only the key."
        )
    return key


AGENT_ENV_MAX_VARIABLES = 50
AGENT_ENV_MAX_VALUE_BYTES = 4 * 1024
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_NAME_MAX_CHARS = 128

_USE_API_KEY_FIELD = "use the API key field on this page instead"
_USE_OAUTH_BOX = "use the Claude OAuth tokens box on this page instead"
_SET_BY_SERVER = "the server sets it for every task"
# Names the server sets itself, or that would change how the agent authenticates: the CLI lets
# an API key silently beat OAuth, so these must only ever come from the auth settings.
AGENT_ENV_RESERVED: dict[str, str] = {
    "ANTHROPIC_API_KEY": _USE_API_KEY_FIELD,
    "ANTHROPIC_AUTH_TOKEN": _USE_API_KEY_FIELD,
    "CLAUDE_CODE_OAUTH_TOKEN": _USE_OAUTH_BOX,
    "CLAUDE_ACCESS_TOKEN": _USE_OAUTH_BOX,
    "CLAUDE_REFRESH_TOKEN": _USE_OAUTH_BOX,
    "CLAUDE_EXPIRES_AT": _USE_OAUTH_BOX,
    "CLAUDE_USE_OAUTH": "use the “Use Claude OAuth” checkbox on this page instead",
    "ANTHROPIC_BASE_URL": _SET_BY_SERVER,
    "HOME": _SET_BY_SERVER,
    "PATH": _SET_BY_SERVER,
    "REPO_URL": _SET_BY_SERVER,
    "REPO_BRANCH": _SET_BY_SERVER,
    "CLAUDE_CONFIG_DIR": _SET_BY_SERVER,
}

_ENV_EXAMPLE = '{"GITHUB_TOKEN": "ghp_...", "NODE_ENV": "test"}'


def _env_name_label(name: str, position: int) -> str:
    # Quote a name only when it looks like one: a key pasted by mistake must not be echoed.
    if 0 < len(name) <= 64 and name.isascii() and name.isprintable() and "sk-ant-" not in name:
        return name
    return f"variable #{position}"


class _Pairs(list):
    """A JSON object as its (name, value) pairs, so repeated names can be reported."""


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, _Pairs | dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "text"


def agent_env_parse(*, raw: str) -> dict[str, str] | None:
    """The agent's extra environment: a JSON object of variable names to text values.

    None when nothing was given (keep what is saved); {} clears it.
    """
    if not raw.strip():
        return None
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        raise SettingsInputError(
            f"The input is larger than {MAX_INPUT_BYTES // 1024} KiB; keep only the variables "
            "the agent needs."
        )
    try:
        # Pairs, not a dict: json.loads would silently keep only the last of two equal names.
        value = json.loads(raw, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as error:
        raise SettingsInputError(
            f"The input is not valid JSON: {error.msg} at line {error.lineno}, column "
            f"{error.colno}. Write an object such as {_ENV_EXAMPLE}."
        ) from None
    except RecursionError:
        raise SettingsInputError("The JSON is nested too deeply.") from None
    if not isinstance(value, _Pairs):
        raise SettingsInputError(
            f"Expected a JSON object of names to values, such as {_ENV_EXAMPLE}; found "
            f"{_json_type_name(value)}."
        )
    if len(value) > AGENT_ENV_MAX_VARIABLES:
        raise SettingsInputError(
            f"There are {len(value)} variables; at most {AGENT_ENV_MAX_VARIABLES} are allowed."
        )
    env: dict[str, str] = {}
    for position, (name, item) in enumerate(value, start=1):
        label = _env_name_label(name, position)
        if not name:
            raise SettingsInputError("A variable name is empty.", field=label)
        if not _ENV_NAME_RE.fullmatch(name) or len(name) > _ENV_NAME_MAX_CHARS:
            raise SettingsInputError(
                "Not a valid variable name: use letters, digits and underscores, not starting "
                "with a digit (for example GITHUB_TOKEN).",
                field=label,
            )
        reserved = AGENT_ENV_RESERVED.get(name.upper())
        if reserved:
            raise SettingsInputError(
                f"{name.upper()} cannot be set here, because it would override how the agent "
                f"authenticates or runs: {reserved}.",
                field=label,
            )
        if name in env:
            raise SettingsInputError("This name appears twice; keep only one of them.", field=label)
        if not isinstance(item, str):
            item_type = _json_type_name(item)
            hint = ' Put it in quotes, for example "8080".' if item_type == "a number" else ""
            raise SettingsInputError(f"Expected text, found {item_type}.{hint}", field=label)
        if "\x00" in item:
            raise SettingsInputError(
                "The value contains a NUL character, which an environment variable cannot hold.",
                field=label,
            )
        size = len(item.encode("utf-8", "surrogatepass"))
        if size > AGENT_ENV_MAX_VALUE_BYTES:
            raise SettingsInputError(
                f"The value is {size:,} bytes; at most {AGENT_ENV_MAX_VALUE_BYTES:,} (4 KiB) are "
                "allowed.",
                field=label,
            )
        env[name] = item
    return env


# --- describing what was understood (no secrets) ----------------------------------------------


def _utc_text(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def expiry_words(*, expires_at: datetime | None, now: datetime) -> str:
    """ "in 7 hours, 59 minutes (2026-01-01 10:00 UTC)", "expired 2 days ago (...)" or "never"."""
    if expires_at is None:
        return "never (no expiry given)"
    if expires_at > now:
        return f"in {timeuntil(expires_at, now)} ({_utc_text(expires_at)})"
    return f"expired {timesince(expires_at, now)} ago ({_utc_text(expires_at)})"


def time_ago_words(*, moment: datetime | None, now: datetime, never: str = "never") -> str:
    if moment is None:
        return never
    if (now - moment).total_seconds() < 60:
        return f"just now ({_utc_text(moment)})"
    return f"{timesince(moment, now)} ago ({_utc_text(moment)})"


_FORMAT_LABELS = {
    InputFormat.CLI: "Claude CLI credentials file (claudeAiOauth)",
    InputFormat.FLAT: "JSON with access_token",
    InputFormat.SETUP_TOKEN: "setup token from `claude setup-token`",
}
_KIND_LABELS = {
    CredentialKind.REFRESHABLE: "refreshable (access token + refresh token)",
    CredentialKind.SETUP_TOKEN: "long-lived token, no refresh token",
}


@dataclass(frozen=True)
class InputDescription:
    """What was understood from a valid input, as (label, value) lines, plus warnings."""

    facts: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)


def credential_input_describe(*, parsed: ParsedCredential, now: datetime) -> InputDescription:
    facts = [
        ("Format", _FORMAT_LABELS[parsed.input_format]),
        ("Kind", _KIND_LABELS[parsed.kind]),
        ("Expires", expiry_words(expires_at=parsed.expires_at, now=now)),
        ("Scopes", ", ".join(parsed.scopes)),
        ("Subscription", parsed.subscription_type or "not stated"),
    ]
    warnings = []
    expired = credential_expired(credential=parsed, now=now)
    if expired and parsed.kind == CredentialKind.SETUP_TOKEN:
        warnings.append(
            "This token has expired and has no refresh token, so tasks would fail with it. "
            "Create a new one with `claude setup-token`."
        )
    elif expired:
        warnings.append(
            "The access token has expired; the server will refresh it before the next task."
        )
    return InputDescription(facts=facts, warnings=warnings)


def api_key_describe(*, key: str) -> InputDescription:
    return InputDescription(facts=[("Understood", f"an Anthropic API key ending in …{key[-4:]}")])


def agent_env_describe(*, env: dict[str, str]) -> InputDescription:
    if not env:
        return InputDescription(
            facts=[("Understood", "no variables: saving removes the saved ones")]
        )
    count = f"{len(env)} variable{'s' if len(env) != 1 else ''}"
    return InputDescription(facts=[("Understood", count), ("Names", ", ".join(env))])


# --- saving -----------------------------------------------------------------------------------


@transaction.atomic
def code_agent_settings_save(
    *,
    user: User,
    use_oauth: bool,
    oauth_tokens: ParsedCredential | None,
    api_key: str,
    agent_env: dict[str, str] | None,
) -> list[str]:
    """Save validated settings in one transaction. Empty inputs keep what is saved.

    Returns what changed, in words, for the confirmation message.
    """
    preferences = UserPreferences.objects.select_for_update().get(pk=preferences_get(user=user).pk)
    changes: list[str] = []
    update_fields = ["updated_at"]
    if preferences.use_oauth != use_oauth:
        preferences.use_oauth = use_oauth
        update_fields.append("use_oauth")
        changes.append("Claude OAuth turned " + ("on" if use_oauth else "off"))
    if api_key:
        preferences.api_key, preferences.api_key_last4 = api_key, api_key[-4:]
        update_fields += ["api_key", "api_key_last4"]
        changes.append(f"API key ending in …{api_key[-4:]} saved")
    if agent_env is not None:
        preferences.agent_env = agent_env or None
        update_fields.append("agent_env")
        changes.append(
            f"{len(agent_env)} environment variable{'s' if len(agent_env) != 1 else ''} saved"
            if agent_env
            else "extra environment variables removed"
        )
    preferences.save(update_fields=update_fields)
    if oauth_tokens is not None:
        credential_store(owner=user, parsed=oauth_tokens, source=CredentialSource.USER)
        changes.append(f"OAuth tokens saved ({_KIND_LABELS[oauth_tokens.kind]})")
    return changes


def api_key_remove(*, user: User) -> bool:
    updated = UserPreferences.objects.filter(user=user).exclude(api_key_last4="")
    return bool(updated.update(api_key="", api_key_last4="", updated_at=timezone.now()))


def agent_env_remove(*, user: User) -> bool:
    # Encrypted columns cannot be filtered on, so read first.
    preferences = preferences_get(user=user)
    if not preferences.agent_env:
        return False
    preferences.agent_env = None
    preferences.save(update_fields=["agent_env", "updated_at"])
    return True


@dataclass(frozen=True)
class RefreshOutcome:
    ok: bool
    message: str


def user_credential_refresh(*, user: User) -> RefreshOutcome:
    """ "Refresh now": force a refresh of the user's saved tokens and say what happened."""
    credential = credential_for_user(user=user)
    if credential is None:
        return RefreshOutcome(False, "No OAuth tokens are saved, so there is nothing to refresh.")
    if not credential.is_refreshable:
        return RefreshOutcome(
            False,
            "These tokens cannot be refreshed: there is no refresh token. When the token "
            "expires, create a new one with `claude setup-token` and paste it here.",
        )
    result = credential_ensure_fresh(credential_id=credential.pk, force=True)
    now = timezone.now()
    if result.ok and result.refreshed and result.snapshot is not None:
        when = expiry_words(expires_at=result.snapshot.expires_at, now=now)
        return RefreshOutcome(True, f"Refreshed. The new access token expires {when}.")
    error = result.error.rstrip(".")
    # The status card right below shows the saved error; do not print it twice.
    credential.refresh_from_db(fields=["last_refresh_error"])
    if error and credential.last_refresh_error.rstrip(".") == error:
        failed = "The refresh failed (the reason is under “Last error”)."
    else:
        failed = f"The refresh failed: {error}."
    if result.ok:  # failed, but the current access token has not expired yet
        advice = "; paste new tokens below before then" if result.permanent else ""
        return RefreshOutcome(
            False, f"{failed} The current access token still works until it expires{advice}."
        )
    advice = "Paste new tokens below." if result.permanent else "Try again later."
    return RefreshOutcome(False, f"{failed} {advice}")


# --- what the page shows ----------------------------------------------------------------------


@dataclass(frozen=True)
class TokenStatus:
    """A saved credential's health, without its tokens."""

    kind: str
    source: str
    status: str
    status_label: str
    expires: str
    last_refreshed: str
    last_error: str
    scopes: str
    subscription: str
    refreshable: bool


@dataclass(frozen=True)
class MethodPreview:
    """Which method the next task uses (auth_method_resolve without refreshing)."""

    available: bool
    step: int  # 1 user OAuth, 2 global OAuth, 3 API key, 0 none
    title: str
    reason: str
    warning: str = ""


@dataclass(frozen=True)
class CodeAgentStatus:
    use_oauth: bool
    tokens: TokenStatus | None
    api_key_last4: str
    agent_env_names: list[str]
    method: MethodPreview


_FAILED_STATUSES = (CredentialStatus.INVALID, CredentialStatus.REFRESH_FAILED)


def token_status_get(*, credential: OAuthCredential, now: datetime) -> TokenStatus:
    status = credential_status_compute(credential=credential, now=now, buffer=refresh_buffer())
    if status == CredentialStatus.EXPIRED and credential.is_refreshable:
        status_label = "Expired (will be refreshed before the next task)"
    else:
        status_label = CredentialStatus(status).label
    return TokenStatus(
        kind=credential.get_kind_display(),
        source=credential.get_source_display(),
        status=status,
        status_label=status_label,
        expires=expiry_words(expires_at=credential.expires_at, now=now),
        last_refreshed=time_ago_words(moment=credential.last_refreshed_at, now=now),
        last_error=credential.last_refresh_error,
        scopes=", ".join(credential.scopes or []) or "none",
        subscription=credential.subscription_type or "not stated",
        # An invalid chain cannot be refreshed again; only new tokens help.
        refreshable=credential.is_refreshable and status != CredentialStatus.INVALID,
    )


def method_preview_get(
    *, user: User, api_key_last4: str, tokens: TokenStatus | None = None
) -> MethodPreview:
    try:
        resolution = auth_method_resolve(user=user, refresh=False)
    except AuthUnavailable as exc:
        return MethodPreview(
            available=False, step=0, title="None: tasks cannot start", reason=str(exc)
        )
    if resolution.method == AuthMethod.OAUTH:
        user_source = resolution.source == AuthSource.USER
        step = 1 if user_source else 2
        title = (
            "Your Claude OAuth tokens" if user_source else "The server's global Claude OAuth tokens"
        )
    else:
        step = 3
        title = (
            f"Your API key (ending in …{api_key_last4})"
            if resolution.source == AuthSource.USER
            else "The server's API key (ANTHROPIC_API_KEY)"
        )
    warning = ""
    if resolution.fallback:
        warning = "Claude OAuth is on but cannot be used, so the API key runs your tasks."
    elif step == 1 and tokens is not None and tokens.status in _FAILED_STATUSES:
        # Still usable until the access token expires, but it will not be renewed.
        warning = (
            f"Your saved tokens could not be refreshed, so they stop working when the access "
            f"token expires, {tokens.expires}. Paste new tokens, or try “Refresh now”."
            if tokens.refreshable
            else f"Your saved tokens can no longer be refreshed, so they stop working when the "
            f"access token expires, {tokens.expires}. Paste new tokens."
        )
    return MethodPreview(
        available=True, step=step, title=title, reason=resolution.reason, warning=warning
    )


def code_agent_saved_inputs(*, user: User) -> dict[str, bool]:
    """Per input of the page: whether something is saved (which an empty field keeps)."""
    preferences = preferences_get(user=user)
    return {
        "oauth_tokens": OAuthCredential.objects.filter(owner=user).exists(),
        "api_key": preferences.has_api_key,
        "agent_env": bool(preferences.agent_env),
    }


def code_agent_status_get(*, user: User) -> CodeAgentStatus:
    preferences = preferences_get(user=user)
    credential = credential_for_user(user=user)
    now = timezone.now()
    tokens = None if credential is None else token_status_get(credential=credential, now=now)
    return CodeAgentStatus(
        use_oauth=preferences.use_oauth,
        tokens=tokens,
        api_key_last4=preferences.api_key_last4,
        agent_env_names=sorted(preferences.agent_env or {}),
        method=method_preview_get(
            user=user, api_key_last4=preferences.api_key_last4, tokens=tokens
        ),
    )


# --- importing from a local Claude installation -----------------------------------------------

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


def credential_import(*, user: User, raw: bytes | str) -> OAuthCredential:
    """Store a Claude installation's login for the user, through the one parser.

    Raises TokenFormatError when the input is not usable.
    """
    parsed = credential_input_parse(raw=raw)
    return credential_store(owner=user, parsed=parsed, source=CredentialSource.IMPORTED)
