"""The one parser of pasted Claude credentials and the one renderer of the CLI's credentials file.

Stdlib only (and the plain common.errors), no Django: the settings page, management commands,
the environment loader and the task runner all import it.

Accepted input (see docs/claude-cli-contract.md#credentials-file):
- the Claude CLI's file ``{"claudeAiOauth": {"accessToken", "refreshToken", "expiresAt", ...}}``;
- a flat JSON ``{"access_token", "refresh_token", "expires_at"}`` (the project's first format);
- a bare setup token from ``claude setup-token`` (``sk-ant-oat...``), optionally as a JSON string.

The renderer only ever writes the CLI's shape: the CLI does not read the flat one.

Token prefixes and the check of a token's characters live here and nowhere else.

Every message is meant for the user. None of them contains a token value or any part of one:
they name the field and say what was expected, and at most quote a well-known type marker
such as ``sk-ant-api``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from common.errors import InputError

__all__ = [
    "ANTHROPIC_PREFIX",
    "API_KEY_PREFIX",
    "CLI_REQUIRED_SCOPES",
    "EXPIRY_MAX",
    "EXPIRY_MIN",
    "INFERENCE_SCOPE",
    "KIND_ACCESS_TOKEN",
    "KIND_API_KEY",
    "KIND_REFRESH_TOKEN",
    "MAX_INPUT_BYTES",
    "MAX_TOKEN_CHARS",
    "REFRESH_TOKEN_PREFIX",
    "SETUP_TOKEN_PREFIX",
    "CredentialKind",
    "InputFormat",
    "ParsedCredential",
    "TokenFormatError",
    "credential_input_parse",
    "credentials_file_dumps",
    "credentials_file_render",
    "expiry_parse",
    "json_int_checked",
    "json_type_name",
    "token_bad_character",
    "token_kind_by_prefix",
]

INFERENCE_SCOPE = "user:inference"
# What the CLI needs in its file, or it refuses to run with "Not logged in"; the minimal file it
# is known to accept (docs/claude-cli-contract.md#credentials-file).
CLI_REQUIRED_SCOPES: tuple[str, ...] = (INFERENCE_SCOPE,)
MAX_INPUT_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 4096
# subscriptionType / rateLimitTier / a scope are short identifiers; anything longer is a mistake.
_MAX_LABEL_CHARS = 200
# Real setup tokens are ~100 characters; a much shorter one was cut off while copying.
_MIN_SETUP_TOKEN_CHARS = 20

# Public type markers, not secrets.
ANTHROPIC_PREFIX = "sk-ant-"
SETUP_TOKEN_PREFIX = ANTHROPIC_PREFIX + "oat"
REFRESH_TOKEN_PREFIX = ANTHROPIC_PREFIX + "ort"
API_KEY_PREFIX = ANTHROPIC_PREFIX + "api"
# What each prefix marks, for token_kind_by_prefix.
KIND_API_KEY = "api_key"
KIND_ACCESS_TOKEN = "access_token"  # noqa: S105 (a kind's name)
KIND_REFRESH_TOKEN = "refresh_token"  # noqa: S105 (a kind's name)
_PREFIX_KINDS = {
    API_KEY_PREFIX: KIND_API_KEY,
    SETUP_TOKEN_PREFIX: KIND_ACCESS_TOKEN,
    REFRESH_TOKEN_PREFIX: KIND_REFRESH_TOKEN,
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXPIRY_MIN = datetime(2020, 1, 1, tzinfo=UTC)
EXPIRY_MAX = datetime(2100, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_EXPIRY_MIN_MS = (EXPIRY_MIN - _EPOCH) // _MS
_EXPIRY_MAX_MS = (EXPIRY_MAX - _EPOCH) // _MS
# Numbers at or above this are milliseconds: 1e11 seconds would be the year 5138, while
# 1e11 milliseconds is 1973, so real expiries of either unit never fall on the wrong side.
_MS_THRESHOLD = 100_000_000_000

# No expiry or other number in a credential needs more digits than this; far longer ones are
# refused before Python converts them (int() refuses over 4,300 digits with a ValueError).
MAX_NUMBER_DIGITS = 30

_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT_RE = re.compile(r"[+-]?[0-9]+")

_FLAT_KEYS = frozenset({"access_token", "refresh_token", "expires_at", "token_type"})
_CLI_INNER_KEYS = frozenset({"accessToken", "refreshToken", "expiresAt"})
_CLI = "claudeAiOauth"

_SHAPES_HINT = (
    'Paste either the Claude CLI\'s credentials file {"claudeAiOauth": {"accessToken": ..., '
    '"refreshToken": ..., "expiresAt": ...}} or {"access_token": ..., "refresh_token": ..., '
    '"expires_at": ...}, or a setup token from `claude setup-token` (it starts with sk-ant-oat).'
)


class TokenFormatError(InputError):
    """Input that is not a usable credential. ``field`` is None when the whole input is wrong."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep `field` across pickling (e.g. errors handed between worker processes).
        return (functools.partial(type(self), field=self.field), (self.message,))


class CredentialKind(StrEnum):
    """The one definition (oauth_tokens.models gives the column its labels from it)."""

    REFRESHABLE = "refreshable"
    # A static access token: nothing to refresh it with.
    SETUP_TOKEN = "setup_token"  # noqa: S105


class InputFormat(StrEnum):
    FLAT = "flat"
    CLI = "cli"
    SETUP_TOKEN = "setup_token"  # noqa: S105


@dataclass(frozen=True, slots=True, repr=False)
class ParsedCredential:
    kind: CredentialKind
    input_format: InputFormat
    access_token: str
    refresh_token: str  # "" when there is none
    expires_at: datetime | None  # aware UTC, whole milliseconds; None = never expires
    scopes: tuple[str, ...]  # as given; () when the input named none (never guessed)
    subscription_type: str  # "" when unknown
    rate_limit_tier: str  # "" when unknown

    def __repr__(self) -> str:
        # The dataclass repr would put the tokens into logs and tracebacks.
        return (
            f"ParsedCredential(kind={self.kind.value!r}, input_format={self.input_format.value!r}, "
            f"access_token='<redacted>', "
            f"refresh_token={'<redacted>' if self.refresh_token else ''!r}, "
            f"expires_at={self.expires_at.isoformat() if self.expires_at else None!r}, "
            f"scopes={self.scopes!r}, subscription_type={self.subscription_type!r}, "
            f"rate_limit_tier={self.rate_limit_tier!r})"
        )

    __str__ = __repr__


# ---------------------------------------------------------------------------------------------
# Small helpers


def json_type_name(value: Any) -> str:
    """Name a value's type the way a user who pasted JSON would."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def json_int_checked(error: type[InputError]) -> Any:
    """A ``parse_int`` hook for json.loads: refuses integers longer than MAX_NUMBER_DIGITS with
    ``error`` (a clear message) instead of int()'s ValueError on 4,300 digits or more."""

    def parse(text: str) -> int:
        digits = len(text.lstrip("+-"))
        if digits > MAX_NUMBER_DIGITS:
            raise error(
                f"The input holds a number with {digits:,} digits; no value here needs more than "
                f"{MAX_NUMBER_DIGITS}. Check what was pasted."
            )
        return int(text)

    return parse


def _date_text(ms: int) -> str:
    try:
        return f"{_EPOCH + timedelta(milliseconds=ms):%Y-%m-%d %H:%M:%S} UTC"
    except OverflowError:
        return "a date after the year 9999"


def _token_check(value: Any, *, field: str | None, what: str = "The token") -> str:
    """Validate one token string and return it without surrounding whitespace."""
    if not isinstance(value, str):
        raise TokenFormatError(f"{what} must be text, found {json_type_name(value)}.", field=field)
    token = value.strip()
    if not token:
        raise TokenFormatError(f"{what} is empty.", field=field)
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenFormatError(
            f"{what} is {len(token):,} characters long; at most {MAX_TOKEN_CHARS:,} are allowed. "
            "Copy only the token.",
            field=field,
        )
    bad = token_bad_character(token)
    # Position only, never the character: it is part of the secret.
    if bad is not None and bad[1] == "space":
        raise TokenFormatError(
            f"{what} contains a space or line break (at character {bad[0]}). A terminal "
            "may have wrapped it: copy it again as one line.",
            field=field,
        )
    if bad is not None:
        raise TokenFormatError(
            f"{what} contains a character that is not printable ASCII (at character "
            f"{bad[0]}), such as a control character, a curly quote or an invisible "
            "character added by an editor. Copy it again from the source.",
            field=field,
        )
    return token


def token_kind_by_prefix(token: str) -> str | None:
    """Which kind of Anthropic secret a string is by its public prefix (KIND_API_KEY,
    KIND_ACCESS_TOKEN for OAuth access and setup tokens, KIND_REFRESH_TOKEN), or None."""
    for prefix, kind in _PREFIX_KINDS.items():
        if token.startswith(prefix):
            return kind
    return None


def token_bad_character(token: str) -> tuple[int, str] | None:
    """The first character a token (or key) cannot hold: (1-based position, "space" or
    "unprintable"), or None. Callers word the message; none of them may quote the character."""
    for position, char in enumerate(token, start=1):
        if char.isspace():
            return position, "space"
        if not (char.isascii() and char.isprintable()):
            return position, "unprintable"
    return None


def _label_check(value: Any, *, field: str) -> str:
    """subscriptionType / rateLimitTier: a short text or null ("" means unknown)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TokenFormatError(
            f"Expected text or null, found {json_type_name(value)}.", field=field
        )
    label = value.strip()
    if len(label) > _MAX_LABEL_CHARS or not (label.isascii() and label.isprintable()):
        raise TokenFormatError(
            f"Expected a short name such as max or pro (printable ASCII, at most "
            f"{_MAX_LABEL_CHARS} characters).",
            field=field,
        )
    return label


def _scopes_check(values: Any, *, field: str) -> tuple[str, ...]:
    """A list of scope names that must grant inference; order kept, duplicates dropped."""
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise TokenFormatError(
            f'Expected a list of scope names such as ["user:inference"], found '
            f"{json_type_name(values)}.",
            field=field,
        )
    scopes: list[str] = []
    for index, item in enumerate(values):
        item_field = f"{field}[{index}]"
        if not isinstance(item, str):
            raise TokenFormatError(
                f"Expected a scope name (text), found {json_type_name(item)}.", field=item_field
            )
        scope = item.strip()
        if (
            not scope
            or len(scope) > _MAX_LABEL_CHARS
            or not (scope.isascii() and scope.isprintable())
            or any(char.isspace() for char in scope)
        ):
            raise TokenFormatError(
                "Expected a scope name such as user:inference (printable ASCII, no spaces).",
                field=item_field,
            )
        if scope not in scopes:
            scopes.append(scope)
    if INFERENCE_SCOPE not in scopes:
        raise TokenFormatError(
            f"The scopes do not include {INFERENCE_SCOPE}, so Claude Code would refuse to run "
            'with "Not logged in". Copy the whole credentials file again, or use a token from '
            "`claude setup-token`.",
            field=field,
        )
    return tuple(scopes)


# ---------------------------------------------------------------------------------------------
# Expiry


def _expiry_out_of_range(ms: int, *, field: str) -> TokenFormatError:
    side = "before" if ms < _EXPIRY_MIN_MS else "after"
    bound = EXPIRY_MIN if ms < _EXPIRY_MIN_MS else EXPIRY_MAX
    message = (
        f"This time means {_date_text(ms)}, which is {side} {bound:%Y-%m-%d}, so it cannot be "
        "a token's expiry."
    )
    # A value 1000 (or a million) times off is a seconds/milliseconds/microseconds mix-up: say
    # what the corrected value would mean when that lands in range. (Scaling the value and
    # scaling the milliseconds it was read as give the same date in every in-range case.)
    corrections = (
        ("divided by 1,000", ms // 1000),
        ("divided by 1,000,000", ms // 1_000_000),
        ("multiplied by 1,000", ms * 1000),
    )
    for how, candidate in corrections:
        if _EXPIRY_MIN_MS <= candidate <= _EXPIRY_MAX_MS:
            message += (
                f" It looks like a seconds/milliseconds mix-up: the value {how} would mean "
                f"{_date_text(candidate)}."
            )
            break
    message += " Give seconds or milliseconds since 1970-01-01 UTC, or an ISO 8601 date."
    return TokenFormatError(message, field=field)


def _expiry_from_number(value: int | float, *, field: str) -> datetime:
    if isinstance(value, float) and not math.isfinite(value):
        raise TokenFormatError(
            "Expected a Unix time in seconds or milliseconds, found a value that is not a "
            "finite number.",
            field=field,
        )
    if value < 0:
        raise TokenFormatError(
            "Expected a Unix time in seconds or milliseconds, found a negative number.",
            field=field,
        )
    # Whole milliseconds: the precision the CLI stores, so parse -> render -> parse is exact.
    # Rounded down: an expiry a fraction early is harmless, a late one is not.
    if value >= _MS_THRESHOLD:
        ms = math.floor(value)
    elif isinstance(value, int):
        ms = value * 1000
    else:
        ms = math.floor(value * 1000)
    if not _EXPIRY_MIN_MS <= ms <= _EXPIRY_MAX_MS:
        raise _expiry_out_of_range(ms, field=field)
    return _EPOCH + timedelta(milliseconds=ms)


def _expiry_from_datetime(value: datetime, *, field: str) -> datetime:
    # A naive time is taken as UTC: that is what every Claude tool writes.
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        # Within hours of the year 1 or 9999 (e.g. 9999-12-31T23:59:59-01:00): in UTC it would
        # fall outside what a date can hold, and far outside any expiry either way.
        side, bound = (
            ("before", EXPIRY_MIN) if value.year < EXPIRY_MIN.year else ("after", EXPIRY_MAX)
        )
        raise TokenFormatError(
            f"This date is {side} {bound:%Y-%m-%d}, so it cannot be a token's expiry.",
            field=field,
        ) from None
    ms = (moment - _EPOCH) // _MS  # whole milliseconds, rounded down as for numbers
    if not _EXPIRY_MIN_MS <= ms <= _EXPIRY_MAX_MS:
        side = "before" if ms < _EXPIRY_MIN_MS else "after"
        bound = EXPIRY_MIN if ms < _EXPIRY_MIN_MS else EXPIRY_MAX
        raise TokenFormatError(
            f"This date means {moment:%Y-%m-%d %H:%M:%S} UTC, which is {side} {bound:%Y-%m-%d}, "
            "so it cannot be a token's expiry.",
            field=field,
        )
    return _EPOCH + timedelta(milliseconds=ms)


def _expiry_from_text(text: str, *, field: str) -> datetime:
    """An expiry given as text: digits (seconds or milliseconds), another number, or ISO 8601."""
    if not text:
        raise TokenFormatError(
            "The expiry is empty. Give a Unix time in seconds or milliseconds, an ISO 8601 "
            "date such as 2026-12-01T10:00:00Z, or null (or leave it out) if it never "
            "expires.",
            field=field,
        )
    if _INT_RE.fullmatch(text):
        if len(text.lstrip("+-")) > MAX_NUMBER_DIGITS:
            if text.startswith("-"):
                return _expiry_from_number(-1, field=field)  # refused as any negative is
            raise TokenFormatError(
                f"This time has {len(text.lstrip('+')):,} digits, so it would be long after "
                f"{EXPIRY_MAX:%Y-%m-%d} and cannot be a token's expiry. Give seconds or "
                "milliseconds since 1970-01-01 UTC, or an ISO 8601 date.",
                field=field,
            )
        return _expiry_from_number(int(text), field=field)
    if _NUMBER_RE.fullmatch(text):
        return _expiry_from_number(float(text), field=field)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        # The value is not echoed: a token pasted into the wrong field must not leak.
        raise TokenFormatError(
            "Expected a Unix time in seconds or milliseconds, or an ISO 8601 date such as "
            "2026-12-01T10:00:00Z; found text that is neither.",
            field=field,
        ) from None
    return _expiry_from_datetime(moment, field=field)


def expiry_parse(*, value: Any, field: str = "expires_at") -> datetime | None:
    """Normalise an expiry to an aware UTC datetime (whole milliseconds), or None for never.

    Accepts seconds or milliseconds since 1970 (a number, or a string of digits; values of
    1e11 or more are milliseconds), an ISO 8601 date (naive means UTC), a datetime, or null.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        # bool is an int in Python, but `true` is not a time.
        raise TokenFormatError(
            "Expected a Unix time in seconds or milliseconds, or an ISO 8601 date such as "
            "2026-12-01T10:00:00Z; found true/false.",
            field=field,
        )
    if isinstance(value, datetime):
        return _expiry_from_datetime(value, field=field)
    if isinstance(value, int | float):
        return _expiry_from_number(value, field=field)
    if isinstance(value, str):
        return _expiry_from_text(value.strip(), field=field)
    raise TokenFormatError(
        "Expected a Unix time in seconds or milliseconds, or an ISO 8601 date such as "
        f"2026-12-01T10:00:00Z; found {json_type_name(value)}.",
        field=field,
    )


# ---------------------------------------------------------------------------------------------
# Parsing


_BARE_TOKEN_WRONG_KIND = {
    KIND_API_KEY: "This is an Anthropic API key (it starts with sk-ant-api), not a Claude login. "
    "Put it in the API key field instead.",
    KIND_REFRESH_TOKEN: "This is a refresh token on its own (it starts with sk-ant-ort), which is "
    "not enough. Paste the whole credentials JSON (~/.claude/.credentials.json), or a setup token "
    "from `claude setup-token`.",
}
_BARE_TOKEN_UNKNOWN = "This is not a kind of Anthropic token that can be used here. " + _SHAPES_HINT
_ACCESS_TOKEN_WRONG_KIND = {
    KIND_REFRESH_TOKEN: "This is a refresh token (it starts with sk-ant-ort), not an access token. "
    "Check that the two tokens are not swapped.",
    KIND_API_KEY: "This is an Anthropic API key (it starts with sk-ant-api), not an OAuth access "
    "token. Put it in the API key field instead.",
}
_REFRESH_TOKEN_WRONG_KIND = {
    KIND_ACCESS_TOKEN: "This is an access token (it starts with sk-ant-oat), not a refresh token. "
    "Check that the two tokens are not swapped.",
    KIND_API_KEY: "This is an Anthropic API key (it starts with sk-ant-api), not a refresh token.",
}


def _bare_token_parse(token: str) -> ParsedCredential:
    """A lone string: only a setup token is usable; name the other known kinds."""
    kind = token_kind_by_prefix(token)
    if kind != KIND_ACCESS_TOKEN:
        raise TokenFormatError(_BARE_TOKEN_WRONG_KIND.get(kind or "", _BARE_TOKEN_UNKNOWN))
    token = _token_check(token, field=None, what="The setup token")
    if len(token) < _MIN_SETUP_TOKEN_CHARS:
        raise TokenFormatError(
            "The setup token is too short; it looks cut off. Copy the whole line that "
            "`claude setup-token` printed."
        )
    return ParsedCredential(
        kind=CredentialKind.SETUP_TOKEN,
        input_format=InputFormat.SETUP_TOKEN,
        access_token=token,
        refresh_token="",
        expires_at=None,
        scopes=(),  # a bare token says nothing about its scopes
        subscription_type="",
        rate_limit_tier="",
    )


def _access_token_check(obj: Mapping[str, Any], key: str, *, field: str) -> str:
    if key not in obj or obj[key] is None:
        raise TokenFormatError("The access token is missing; it is required.", field=field)
    token = _token_check(obj[key], field=field, what="The access token")
    wrong = _ACCESS_TOKEN_WRONG_KIND.get(token_kind_by_prefix(token) or "")
    if wrong:
        raise TokenFormatError(wrong, field=field)
    return token


def _refresh_token_check(obj: Mapping[str, Any], key: str, *, field: str, access: str) -> str:
    value = obj.get(key)
    # Absent, null or "" all mean "no refresh token": a static token the server cannot renew.
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    token = _token_check(value, field=field, what="The refresh token")
    wrong = _REFRESH_TOKEN_WRONG_KIND.get(token_kind_by_prefix(token) or "")
    if wrong:
        raise TokenFormatError(wrong, field=field)
    if token == access:
        raise TokenFormatError(
            "The refresh token is the same as the access token. Copy both again.", field=field
        )
    return token


def _kind(refresh_token: str) -> CredentialKind:
    return CredentialKind.REFRESHABLE if refresh_token else CredentialKind.SETUP_TOKEN


def _flat_parse(obj: Mapping[str, Any]) -> ParsedCredential:
    access = _access_token_check(obj, "access_token", field="access_token")
    refresh = _refresh_token_check(obj, "refresh_token", field="refresh_token", access=access)

    token_type = obj.get("token_type")
    if token_type is not None and (
        not isinstance(token_type, str) or token_type.strip().lower() != "bearer"
    ):
        raise TokenFormatError(
            'Expected "Bearer" (or leave token_type out); Claude OAuth tokens are bearer tokens.',
            field="token_type",
        )

    if obj.get("expires_at") is None and obj.get("expires_in") is not None:
        # expires_in counts from when the token was issued, which the paste does not say.
        raise TokenFormatError(
            "expires_in is relative to when the token was issued, so it cannot be stored. "
            "Give expires_at as a Unix time in seconds or milliseconds instead.",
            field="expires_in",
        )
    expires_at = expiry_parse(value=obj.get("expires_at"), field="expires_at")

    scope, scopes = obj.get("scope"), obj.get("scopes")
    if scope is not None and scopes is not None:
        raise TokenFormatError(
            "Give the scopes once: either scope (space-separated text) or scopes (a list).",
            field="scope",
        )
    if scope is not None:
        if not isinstance(scope, str):
            raise TokenFormatError(
                "Expected the scopes as space-separated text such as "
                f'"user:inference user:profile", found {json_type_name(scope)}.',
                field="scope",
            )
        parsed_scopes = _scopes_check(scope.split(), field="scope")
    elif scopes is not None:
        parsed_scopes = _scopes_check(scopes, field="scopes")
    else:
        parsed_scopes = ()

    return ParsedCredential(
        kind=_kind(refresh),
        input_format=InputFormat.FLAT,
        access_token=access,
        refresh_token=refresh,
        expires_at=expires_at,
        scopes=parsed_scopes,
        subscription_type="",
        rate_limit_tier="",
    )


def _cli_parse(inner: Any) -> ParsedCredential:
    if inner is None:
        # The CLI blanks its login after its refresh token is rejected.
        raise TokenFormatError(
            "The file holds no login. Log in with `claude` again (or run `claude setup-token`) "
            "and copy the file again.",
            field=_CLI,
        )
    if not isinstance(inner, Mapping):
        raise TokenFormatError(
            f"Expected an object {{...}}, found {json_type_name(inner)}. "
            "Copy the whole file again.",
            field=_CLI,
        )
    access_field = f"{_CLI}.accessToken"
    if isinstance(inner.get("accessToken"), str) and not inner["accessToken"].strip():
        raise TokenFormatError(
            "The access token is empty; the CLI clears it when its login stops working. Log "
            "in with `claude` again (or run `claude setup-token`) and copy the file again.",
            field=access_field,
        )
    access = _access_token_check(inner, "accessToken", field=access_field)
    refresh = _refresh_token_check(
        inner, "refreshToken", field=f"{_CLI}.refreshToken", access=access
    )
    expires_at = expiry_parse(value=inner.get("expiresAt"), field=f"{_CLI}.expiresAt")
    raw_scopes = inner.get("scopes")
    scopes = () if raw_scopes is None else _scopes_check(raw_scopes, field=f"{_CLI}.scopes")
    return ParsedCredential(
        kind=_kind(refresh),
        input_format=InputFormat.CLI,
        access_token=access,
        refresh_token=refresh,
        expires_at=expires_at,
        scopes=scopes,
        subscription_type=_label_check(
            inner.get("subscriptionType"), field=f"{_CLI}.subscriptionType"
        ),
        rate_limit_tier=_label_check(inner.get("rateLimitTier"), field=f"{_CLI}.rateLimitTier"),
    )


def _mapping_parse(obj: Mapping[str, Any]) -> ParsedCredential:
    keys = set(obj.keys())
    if _CLI in keys and keys & _FLAT_KEYS:
        raise TokenFormatError(
            "The input mixes the Claude CLI's claudeAiOauth object with access_token-style "
            "fields. Paste only one of them."
        )
    if _CLI in keys:
        return _cli_parse(obj[_CLI])  # other top-level keys (e.g. mcpOAuth) are not ours
    if keys & _FLAT_KEYS:
        return _flat_parse(obj)
    if keys & _CLI_INNER_KEYS:
        raise TokenFormatError(
            "This looks like the inside of the Claude CLI's credentials file. Paste the whole "
            'file, including the outer {"claudeAiOauth": ...}.'
        )
    # Unknown keys are not listed: a key could itself be a pasted secret.
    raise TokenFormatError("The object has none of the expected fields. " + _SHAPES_HINT)


# Names worth quoting in the duplicate-name message; any other name could be a pasted secret.
_KNOWN_NAMES = (
    _FLAT_KEYS
    | _CLI_INNER_KEYS
    | {_CLI, "scope", "scopes", "expires_in", "subscriptionType", "rateLimitTier"}
)


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads would keep the last of two equal names silently; which one the user meant is
    anyone's guess, so refuse (as the extra-environment field does)."""
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            if name in _KNOWN_NAMES:
                raise TokenFormatError(
                    f"{name} appears twice in the same object; keep only one of them.", field=name
                )
            raise TokenFormatError(
                "A name appears twice in the same object; keep only one of each name."
            )
        obj[name] = value
    return obj


def _text_parse(text: str) -> ParsedCredential:
    text = text.removeprefix("\ufeff")  # editors on Windows prepend a byte order mark
    stripped = text.strip()
    if not stripped:
        raise TokenFormatError("No credentials were given. " + _SHAPES_HINT)
    if stripped.startswith(ANTHROPIC_PREFIX):
        return _bare_token_parse(stripped)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_int=json_int_checked(TokenFormatError),
        )
    except json.JSONDecodeError as error:
        # error.msg never contains the document; lineno/colno point into what the user pasted.
        if ANTHROPIC_PREFIX in text:
            raise TokenFormatError(
                "The input is not valid JSON and not a bare token. Paste only the token itself "
                "(starting with sk-ant-oat), without a variable name, or the whole credentials "
                "JSON.",
            ) from None
        raise TokenFormatError(
            f"The input is not valid JSON: {error.msg} at line {error.lineno}, column "
            f"{error.colno}. " + _SHAPES_HINT
        ) from None
    except RecursionError:
        raise TokenFormatError("The JSON is nested too deeply. " + _SHAPES_HINT) from None
    if isinstance(value, str):
        if not value.strip().startswith(ANTHROPIC_PREFIX):
            raise TokenFormatError(
                "A JSON string here must be a setup token from `claude setup-token` (it starts "
                "with sk-ant-oat). " + _SHAPES_HINT
            )
        return _bare_token_parse(value.strip())
    if isinstance(value, Mapping):
        return _mapping_parse(value)
    raise TokenFormatError(
        f"Expected a JSON object {{...}} or a setup token, found {json_type_name(value)}. "
        + _SHAPES_HINT
    )


def credential_input_parse(*, raw: str | bytes | Mapping[str, Any]) -> ParsedCredential:
    """Parse whatever the user pasted (or a loader built) into one validated credential.

    Raises TokenFormatError with the offending field and a user-facing message.
    """
    if isinstance(raw, Mapping):
        return _mapping_parse(raw)
    if isinstance(raw, bytes | bytearray):
        size = len(raw)
    elif isinstance(raw, str):
        # len(str) <= its UTF-8 size, so a huge string is rejected without encoding it.
        size = len(raw) if len(raw) > MAX_INPUT_BYTES else len(raw.encode("utf-8", "surrogatepass"))
    elif raw is None:
        raise TokenFormatError("No credentials were given. " + _SHAPES_HINT)
    else:
        raise TokenFormatError(
            f"Expected text, bytes or a mapping, found {json_type_name(raw)}. " + _SHAPES_HINT
        )
    if size > MAX_INPUT_BYTES:
        raise TokenFormatError(
            f"The input is {size:,} bytes; the limit is {MAX_INPUT_BYTES:,} bytes (64 KiB). "
            "A credentials file is well under 1 KiB: paste only the credentials."
        )
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as error:
            raise TokenFormatError(
                f"The input is not UTF-8 text (invalid byte at position {error.start}). "
                "Save or copy the credentials as UTF-8 text."
            ) from None
    return _text_parse(raw)


# ---------------------------------------------------------------------------------------------
# Rendering


def credentials_file_render(
    *,
    access_token: str,
    refresh_token: str,
    expires_at: datetime | None,
    scopes: Sequence[str],
    subscription_type: str = "",
    rate_limit_tier: str = "",
) -> dict[str, Any]:
    """The Claude CLI's ``.credentials.json`` content, never the flat shape (the CLI ignores it).

    ``expiresAt`` is in milliseconds (the CLI reads seconds as 1970 and refreshes at once).
    No scopes (a credential pasted without any) are written as CLI_REQUIRED_SCOPES: the CLI
    refuses a file without user:inference, and the token endpoint, not this file, decides what
    the token may do. Raises ValueError (TokenFormatError) on an unusable token, scopes without
    user:inference or a naive ``expires_at``.
    """
    access = _token_check(access_token, field="accessToken", what="The access token")
    refresh = (
        _token_check(refresh_token, field="refreshToken", what="The refresh token")
        if refresh_token
        else ""
    )
    if expires_at is None:
        expires_ms = None
    elif not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
        # A naive datetime here is a programming error, not user input: fail loudly.
        raise TokenFormatError("Expected an aware datetime or None.", field="expiresAt")
    else:
        expires_ms = (expires_at - _EPOCH) // _MS
    inner: dict[str, Any] = {"accessToken": access}
    # No refresh token -> leave the key out instead of writing "" or null: with no refreshToken
    # and a null expiresAt the CLI uses the access token as is and never tries to refresh.
    if refresh:
        inner["refreshToken"] = refresh
    inner["expiresAt"] = expires_ms
    none_given = isinstance(scopes, list | tuple) and not scopes
    inner["scopes"] = list(
        _scopes_check(CLI_REQUIRED_SCOPES if none_given else scopes, field="scopes")
    )
    inner["subscriptionType"] = _label_check(subscription_type, field="subscriptionType") or None
    tier = _label_check(rate_limit_tier, field="rateLimitTier")
    if tier:
        inner["rateLimitTier"] = tier
    return {_CLI: inner}


def credentials_file_dumps(
    *,
    access_token: str,
    refresh_token: str,
    expires_at: datetime | None,
    scopes: Sequence[str],
    subscription_type: str = "",
    rate_limit_tier: str = "",
) -> str:
    """JSON text for ``~/.claude/.credentials.json`` (see credentials_file_render)."""
    return json.dumps(
        credentials_file_render(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=expires_at,
            scopes=scopes,
            subscription_type=subscription_type,
            rate_limit_tier=rate_limit_tier,
        )
    )
