"""oauth_tokens.formats: the parser of pasted credentials and the CLI credentials-file renderer.

Plain pytest: no database and no Django settings (run with ``-p no:django``).
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import random
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from oauth_tokens.formats import (
    MAX_INPUT_BYTES,
    MAX_TOKEN_CHARS,
    CredentialKind,
    InputFormat,
    ParsedCredential,
    TokenFormatError,
    credential_input_parse,
    credentials_file_dumps,
    credentials_file_render,
    expiry_parse,
)

# Distinctive bodies so a leak of any part of a token into a message is easy to spot.
ACCESS_BODY = "AccessBodyQwErTy0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ_-KLMNOPQRSTUVWXYZ"
REFRESH_BODY = "RefreshBodyZxCvBn9876543210zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQ_-PONMLKJIHGFEDCB"
SETUP_TOKEN = "sk-ant-oat01-" + ACCESS_BODY
ACCESS = "sk-ant-oat01-" + ACCESS_BODY
REFRESH = "sk-ant-ort01-" + REFRESH_BODY
API_KEY = "sk-ant-api03-" + ACCESS_BODY

INFERENCE_ONLY = ("user:inference",)
# The scopes of the facts' example file; an input without scopes gets none (never guessed ones).
CLI_SCOPES = ("user:inference", "user:profile", "user:sessions:claude_code")
NO_SCOPES: tuple[str, ...] = ()
# docs/claude-cli-contract.md#credentials-file: expiresAt 1795914568578 ms.
FACTS_EXPIRES_MS = 1795914568578
FACTS_EXPIRES = datetime(2026, 11, 29, 1, 9, 28, 578000, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
DEC_1_S = int(DEC_1.timestamp())
DEC_1_MS = DEC_1_S * 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Marks a key to leave out of the built input.
_ABSENT = object()


def cli_file(**inner: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "accessToken": ACCESS,
        "refreshToken": REFRESH,
        "expiresAt": FACTS_EXPIRES_MS,
        "scopes": list(CLI_SCOPES),
        "subscriptionType": "max",
        "rateLimitTier": "default_claude_max_20x",
    }
    base.update(inner)
    return {"claudeAiOauth": {k: v for k, v in base.items() if v is not _ABSENT}}


def flat(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"access_token": ACCESS, "refresh_token": REFRESH, "expires_at": DEC_1_S}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not _ABSENT}


def assert_no_secret(text: str) -> None:
    """No 8-character piece of any test token body may appear in user-facing text."""
    for body in (ACCESS_BODY, REFRESH_BODY):
        for start in range(len(body) - 8):
            assert body[start : start + 8] not in text, f"token fragment leaked: {text!r}"


def parse_error(raw: Any) -> TokenFormatError:
    with pytest.raises(TokenFormatError) as caught:
        credential_input_parse(raw=raw)
    assert_no_secret(str(caught.value))
    assert_no_secret(repr(caught.value))
    return caught.value


# ---------------------------------------------------------------------------------------------
# Accepted: the flat JSON (the project's first format)


@pytest.mark.parametrize(
    ("raw", "kind", "expires_at", "scopes"),
    [
        pytest.param(flat(), CredentialKind.REFRESHABLE, DEC_1, NO_SCOPES, id="seconds"),
        pytest.param(
            flat(expires_at=DEC_1_MS), CredentialKind.REFRESHABLE, DEC_1, NO_SCOPES, id="ms"
        ),
        pytest.param(
            flat(token_type="bearer"),
            CredentialKind.REFRESHABLE,
            DEC_1,
            NO_SCOPES,
            id="bearer",
        ),
        pytest.param(
            flat(token_type="Bearer", expires_at=None),
            CredentialKind.REFRESHABLE,
            None,
            NO_SCOPES,
            id="expires-null",
        ),
        pytest.param(
            flat(expires_at=_ABSENT),
            CredentialKind.REFRESHABLE,
            None,
            NO_SCOPES,
            id="no-expiry",
        ),
        pytest.param(
            flat(refresh_token=_ABSENT),
            CredentialKind.SETUP_TOKEN,
            DEC_1,
            NO_SCOPES,
            id="no-rt",
        ),
        pytest.param(
            flat(refresh_token=None),
            CredentialKind.SETUP_TOKEN,
            DEC_1,
            NO_SCOPES,
            id="rt-null",
        ),
        pytest.param(
            flat(refresh_token=""), CredentialKind.SETUP_TOKEN, DEC_1, NO_SCOPES, id="rt-empty"
        ),
        pytest.param(
            flat(scope="user:profile user:inference"),
            CredentialKind.REFRESHABLE,
            DEC_1,
            ("user:profile", "user:inference"),
            id="scope-string",
        ),
        pytest.param(
            flat(scopes=["user:inference", "user:inference", "user:mcp_servers"]),
            CredentialKind.REFRESHABLE,
            DEC_1,
            ("user:inference", "user:mcp_servers"),
            id="scopes-list-deduped",
        ),
        pytest.param(
            flat(expires_at="2026-12-01T10:00:00Z", account={"uuid": "x"}),
            CredentialKind.REFRESHABLE,
            DEC_1,
            NO_SCOPES,
            id="iso-and-extra-key",
        ),
    ],
)
def test_flat_json_is_accepted(
    raw: dict[str, Any], kind: CredentialKind, expires_at: datetime | None, scopes: tuple[str, ...]
) -> None:
    for given in (raw, json.dumps(raw), json.dumps(raw, indent=2).encode()):
        parsed = credential_input_parse(raw=given)
        assert parsed.input_format is InputFormat.FLAT
        assert parsed.kind is kind
        assert parsed.access_token == ACCESS
        assert parsed.refresh_token == (REFRESH if kind is CredentialKind.REFRESHABLE else "")
        assert parsed.expires_at == expires_at
        assert parsed.scopes == scopes
        assert parsed.subscription_type == ""
        assert parsed.rate_limit_tier == ""


def test_flat_json_does_not_require_the_sk_ant_prefix_and_trims_tokens() -> None:
    parsed = credential_input_parse(
        raw={
            "access_token": "  test-access\n",
            "refresh_token": " test-refresh ",
            "expires_at": None,
        }
    )
    assert (parsed.access_token, parsed.refresh_token) == ("test-access", "test-refresh")


# ---------------------------------------------------------------------------------------------
# Accepted: the Claude CLI's credentials file


def test_cli_file_from_the_facts_is_accepted() -> None:
    parsed = credential_input_parse(raw=json.dumps(cli_file()))
    assert parsed == ParsedCredential(
        kind=CredentialKind.REFRESHABLE,
        input_format=InputFormat.CLI,
        access_token=ACCESS,
        refresh_token=REFRESH,
        expires_at=FACTS_EXPIRES,
        scopes=CLI_SCOPES,
        subscription_type="max",
        rate_limit_tier="default_claude_max_20x",
    )


@pytest.mark.parametrize(
    ("inner", "kind", "expires_at", "scopes", "subscription"),
    [
        pytest.param(
            {"refreshToken": None, "expiresAt": None, "scopes": ["user:inference"]},
            CredentialKind.SETUP_TOKEN,
            None,
            INFERENCE_ONLY,
            "max",
            id="minimal-null",
        ),
        pytest.param(
            {"refreshToken": "", "subscriptionType": None},
            CredentialKind.SETUP_TOKEN,
            FACTS_EXPIRES,
            CLI_SCOPES,
            "",
            id="rt-empty-sub-null",
        ),
        pytest.param(
            {"refreshToken": _ABSENT, "expiresAt": _ABSENT, "scopes": _ABSENT},
            CredentialKind.SETUP_TOKEN,
            None,
            NO_SCOPES,
            "max",
            id="rt-scopes-absent",
        ),
        pytest.param(
            {"scopes": _ABSENT, "expiresAt": str(FACTS_EXPIRES_MS)},
            CredentialKind.REFRESHABLE,
            FACTS_EXPIRES,
            NO_SCOPES,
            "max",
            id="scopes-absent-ms-string",
        ),
        pytest.param(
            {"expiresAt": DEC_1_S, "isEnterprise": False, "somethingNew": {"a": 1}},
            CredentialKind.REFRESHABLE,
            DEC_1,
            CLI_SCOPES,
            "max",
            id="seconds-and-unknown-keys",
        ),
    ],
)
def test_cli_file_variants_are_accepted(
    inner: dict[str, Any],
    kind: CredentialKind,
    expires_at: datetime | None,
    scopes: tuple[str, ...],
    subscription: str,
) -> None:
    parsed = credential_input_parse(raw=json.dumps(cli_file(**inner)))
    assert parsed.input_format is InputFormat.CLI
    assert parsed.kind is kind
    assert parsed.expires_at == expires_at
    assert parsed.scopes == scopes
    assert parsed.subscription_type == subscription


def test_cli_file_ignores_other_top_level_keys() -> None:
    raw = cli_file() | {"mcpOAuth": {"server|abc": {"accessToken": "other"}}}
    assert credential_input_parse(raw=raw) == credential_input_parse(raw=cli_file())


# ---------------------------------------------------------------------------------------------
# Accepted: a bare setup token


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(SETUP_TOKEN, id="bare"),
        pytest.param(f"\n  {SETUP_TOKEN}\r\n\n", id="surrounding-whitespace"),
        pytest.param(f'"{SETUP_TOKEN}"', id="json-string"),
        pytest.param(f' "{SETUP_TOKEN} "\n', id="json-string-padded"),
        pytest.param(SETUP_TOKEN.encode(), id="bytes"),
        pytest.param(bytearray(f"{SETUP_TOKEN}\n".encode()), id="bytearray"),
        pytest.param("\ufeff" + SETUP_TOKEN, id="byte-order-mark"),
        pytest.param(b"\xef\xbb\xbf" + SETUP_TOKEN.encode(), id="bytes-byte-order-mark"),
    ],
)
def test_setup_token_is_accepted(raw: str | bytes) -> None:
    parsed = credential_input_parse(raw=raw)
    assert parsed.kind is CredentialKind.SETUP_TOKEN
    assert parsed.input_format is InputFormat.SETUP_TOKEN
    assert parsed.access_token == SETUP_TOKEN
    assert parsed.refresh_token == ""
    assert parsed.expires_at is None
    assert parsed.scopes == NO_SCOPES


def test_mapping_input_other_than_dict_is_accepted() -> None:
    parsed = credential_input_parse(raw=MappingProxyType(flat()))
    assert parsed.kind is CredentialKind.REFRESHABLE
    inner = MappingProxyType({"accessToken": ACCESS, "scopes": ["user:inference"]})
    assert credential_input_parse(raw={"claudeAiOauth": inner}).input_format is InputFormat.CLI


# ---------------------------------------------------------------------------------------------
# Rejected: the whole input


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        pytest.param("", "No credentials were given", id="empty"),
        pytest.param(" \n\t\r\n", "No credentials were given", id="whitespace"),
        pytest.param(b"", "No credentials were given", id="empty-bytes"),
        pytest.param(None, "No credentials were given", id="none"),
        pytest.param(API_KEY, "API key field", id="api-key"),
        pytest.param(f'"{API_KEY}"', "API key field", id="api-key-json-string"),
        pytest.param(REFRESH, "Paste the whole credentials JSON", id="refresh-token-alone"),
        pytest.param("sk-ant-admin01-" + ACCESS_BODY, "not a kind of Anthropic token", id="admin"),
        pytest.param("sk-ant-oat01-abc", "cut off", id="setup-token-too-short"),
        pytest.param(SETUP_TOKEN[:40] + "\n" + SETUP_TOKEN[40:], "as one line", id="wrapped"),
        pytest.param(f"{SETUP_TOKEN}\nStore this token", "space or line break", id="trailing"),
        pytest.param(SETUP_TOKEN + "\u200b", "not printable ASCII", id="zero-width-space"),
        pytest.param(f"CLAUDE_CODE_OAUTH_TOKEN={SETUP_TOKEN}", "without a variable name", id="env"),
        pytest.param('{"access_token": "x",}', "line 1, column 22", id="trailing-comma"),
        pytest.param('{\n  "a": 1\n  "b": 2\n}', "line 3, column 3", id="missing-comma"),
        pytest.param("hello", "not valid JSON", id="plain-word"),
        pytest.param('"hello"', "must be a setup token", id="json-string-not-a-token"),
        pytest.param("[]", "found a list", id="array"),
        pytest.param("42", "found a number", id="number"),
        pytest.param("true", "found true/false", id="bool"),
        pytest.param("null", "found null", id="null"),
        pytest.param("{}", "none of the expected fields", id="empty-object"),
        pytest.param({"token": ACCESS}, "none of the expected fields", id="unknown-keys"),
        pytest.param(
            {"accessToken": ACCESS, "refreshToken": REFRESH},
            'outer {"claudeAiOauth": ...}',
            id="cli-inner-object-only",
        ),
        pytest.param(cli_file() | flat(), "Paste only one of them", id="both-shapes"),
        pytest.param(b"\xff\xfe{}", "not UTF-8 text (invalid byte at position 0)", id="latin1"),
        pytest.param("[" * 60_000, "nested too deeply", id="deep-nesting"),
        pytest.param(42, "Expected text, bytes or a mapping", id="python-int"),
    ],
)
def test_whole_input_rejected(raw: Any, phrase: str) -> None:
    error = parse_error(raw)
    assert error.field is None
    assert phrase in error.message
    assert str(error) == error.message


def test_unknown_shape_lists_both_accepted_shapes() -> None:
    message = parse_error({"foo": 1}).message
    assert '"claudeAiOauth"' in message
    assert '"access_token"' in message
    assert "claude setup-token" in message


def test_unknown_keys_are_not_echoed() -> None:
    # A key could itself be a pasted secret.
    assert "SecretKeyName" not in parse_error({"SecretKeyName": 1}).message


# ---------------------------------------------------------------------------------------------
# Rejected: size


def test_input_of_exactly_64_kib_is_accepted() -> None:
    text = json.dumps(flat())
    padded = text + " " * (MAX_INPUT_BYTES - len(text))
    assert len(padded.encode()) == MAX_INPUT_BYTES
    assert credential_input_parse(raw=padded).kind is CredentialKind.REFRESHABLE
    assert credential_input_parse(raw=padded.encode()).kind is CredentialKind.REFRESHABLE


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(" " * MAX_INPUT_BYTES + "x", id="str-one-over"),
        pytest.param(b" " * (MAX_INPUT_BYTES + 1), id="bytes-one-over"),
        # 32,768 characters but 65,537 bytes: the limit is on UTF-8 bytes.
        pytest.param("é" * (MAX_INPUT_BYTES // 2) + "x", id="multibyte"),
    ],
)
def test_input_over_64_kib_is_rejected_with_size_and_limit(raw: str | bytes) -> None:
    error = parse_error(raw)
    assert error.field is None
    assert "65,537 bytes" in error.message
    assert "65,536 bytes (64 KiB)" in error.message


def test_huge_input_is_rejected_by_size() -> None:
    assert "10,000,000 bytes" in parse_error("x" * 10_000_000).message


# ---------------------------------------------------------------------------------------------
# Rejected: one field


@pytest.mark.parametrize(
    ("raw", "field", "phrase"),
    [
        # flat: tokens
        pytest.param(flat(access_token=_ABSENT), "access_token", "missing", id="at-absent"),
        pytest.param(flat(access_token=None), "access_token", "missing", id="at-null"),
        pytest.param(flat(access_token=""), "access_token", "is empty", id="at-empty"),
        pytest.param(flat(access_token=123), "access_token", "found a number", id="at-number"),
        pytest.param(flat(access_token=[ACCESS]), "access_token", "found a list", id="at-list"),
        pytest.param(flat(access_token=True), "access_token", "found true/false", id="at-bool"),
        pytest.param(flat(refresh_token=5), "refresh_token", "found a number", id="rt-number"),
        pytest.param(
            flat(refresh_token={"a": 1}), "refresh_token", "found an object", id="rt-object"
        ),
        pytest.param(
            flat(access_token=ACCESS[:30] + " " + ACCESS[30:]),
            "access_token",
            "space or line break (at character 31)",
            id="at-inner-space",
        ),
        pytest.param(
            flat(refresh_token=REFRESH + "\x00"),
            "refresh_token",
            "not printable ASCII",
            id="rt-control-char",
        ),
        pytest.param(
            flat(access_token="tést-token"), "access_token", "not printable ASCII", id="at-accent"
        ),
        pytest.param(
            flat(access_token="a" * (MAX_TOKEN_CHARS + 1)),
            "access_token",
            "4,097 characters long; at most 4,096",
            id="at-too-long",
        ),
        pytest.param(
            flat(access_token=REFRESH, refresh_token=ACCESS), "access_token", "swapped", id="swap"
        ),
        pytest.param(
            flat(access_token="test-access", refresh_token=SETUP_TOKEN),
            "refresh_token",
            "swapped",
            id="rt-is-access-token",
        ),
        pytest.param(flat(access_token=API_KEY), "access_token", "API key", id="at-api-key"),
        pytest.param(flat(refresh_token=API_KEY), "refresh_token", "API key", id="rt-api-key"),
        pytest.param(
            flat(access_token="same-token", refresh_token="same-token"),
            "refresh_token",
            "same as the access token",
            id="same-tokens",
        ),
        # flat: other fields
        pytest.param(flat(token_type="MAC"), "token_type", '"Bearer"', id="token-type"),
        pytest.param(flat(token_type=1), "token_type", '"Bearer"', id="token-type-number"),
        pytest.param(
            flat(expires_at=_ABSENT, expires_in=3600), "expires_in", "expires_at", id="expires-in"
        ),
        pytest.param(flat(expires_at="soon"), "expires_at", "ISO 8601", id="expires-text"),
        pytest.param(flat(expires_at=1234567890), "expires_at", "2009-02-13", id="expires-2009"),
        pytest.param(
            flat(scope="user:inference", scopes=["user:inference"]),
            "scope",
            "either scope",
            id="scope-and-scopes",
        ),
        pytest.param(flat(scope="user:profile"), "scope", "Not logged in", id="scope-no-inference"),
        pytest.param(flat(scope=["user:inference"]), "scope", "space-separated", id="scope-list"),
        pytest.param(flat(scopes="user:inference"), "scopes", "list of scope", id="scopes-string"),
        pytest.param(flat(scopes=[]), "scopes", "user:inference", id="scopes-empty"),
        pytest.param(flat(scopes=["user:inference", 7]), "scopes[1]", "found a number", id="s-int"),
        # CLI file
        pytest.param({"claudeAiOauth": []}, "claudeAiOauth", "found a list", id="cli-list"),
        pytest.param({"claudeAiOauth": "x"}, "claudeAiOauth", "found text", id="cli-string"),
        pytest.param({"claudeAiOauth": None}, "claudeAiOauth", "holds no login", id="cli-null"),
        pytest.param(
            cli_file(accessToken=_ABSENT),
            "claudeAiOauth.accessToken",
            "missing",
            id="cli-at-absent",
        ),
        pytest.param(
            cli_file(accessToken=""), "claudeAiOauth.accessToken", "Log in", id="cli-at-blanked"
        ),
        pytest.param(
            cli_file(accessToken=7), "claudeAiOauth.accessToken", "found a number", id="cli-at-num"
        ),
        pytest.param(
            cli_file(refreshToken=False),
            "claudeAiOauth.refreshToken",
            "found true/false",
            id="cli-rt-bool",
        ),
        pytest.param(
            cli_file(scopes=["user:profile"]),
            "claudeAiOauth.scopes",
            '"Not logged in"',
            id="cli-scopes-no-inference",
        ),
        pytest.param(
            cli_file(scopes="user:inference"),
            "claudeAiOauth.scopes",
            "list of scope names",
            id="cli-scopes-string",
        ),
        pytest.param(
            cli_file(scopes=[None]), "claudeAiOauth.scopes[0]", "found null", id="cli-scope-null"
        ),
        pytest.param(
            cli_file(scopes=["user: inference"]),
            "claudeAiOauth.scopes[0]",
            "no spaces",
            id="cli-scope-space",
        ),
        pytest.param(
            cli_file(subscriptionType=5),
            "claudeAiOauth.subscriptionType",
            "text or null",
            id="cli-sub-number",
        ),
        pytest.param(
            cli_file(rateLimitTier=["x"]),
            "claudeAiOauth.rateLimitTier",
            "found a list",
            id="cli-tier-list",
        ),
        pytest.param(
            cli_file(expiresAt="abc"), "claudeAiOauth.expiresAt", "ISO 8601", id="cli-exp-text"
        ),
        pytest.param(
            cli_file(expiresAt=True), "claudeAiOauth.expiresAt", "true/false", id="cli-exp-bool"
        ),
        pytest.param(
            cli_file(expiresAt=1_577_836_799_999),
            "claudeAiOauth.expiresAt",
            "2019-12-31 23:59:59 UTC",
            id="cli-exp-2019",
        ),
    ],
)
def test_field_rejected(raw: dict[str, Any], field: str, phrase: str) -> None:
    for given in (raw, json.dumps(raw)):
        error = parse_error(given)
        assert error.field == field
        assert phrase in error.message
        assert str(error) == f"{field}: {error.message}"


def test_cli_scopes_error_says_how_to_fix_it() -> None:
    message = parse_error(cli_file(scopes=["user:profile"])).message
    assert "copy the whole credentials file again" in message.lower()
    assert "claude setup-token" in message


def test_token_of_exactly_max_length_is_accepted() -> None:
    parsed = credential_input_parse(raw=flat(access_token="a" * MAX_TOKEN_CHARS))
    assert len(parsed.access_token) == MAX_TOKEN_CHARS


def test_no_rejection_message_contains_a_token() -> None:
    """Every way of getting a token wrong keeps the token out of str() and the message."""
    bad_inputs: list[Any] = [
        API_KEY,
        REFRESH,
        f"export CLAUDE_CODE_OAUTH_TOKEN={ACCESS}",
        f"{ACCESS} {REFRESH}",
        flat(expires_at=ACCESS),
        flat(expires_at=REFRESH),
        flat(token_type=ACCESS),
        flat(scope=ACCESS),
        flat(scopes=[ACCESS]),
        flat(access_token=REFRESH),
        flat(access_token=ACCESS + "\tx"),
        {ACCESS: REFRESH},
        cli_file(subscriptionType=ACCESS + "\n" + REFRESH),
        cli_file(refreshToken=ACCESS),
        json.dumps(flat())[:-1],
    ]
    for raw in bad_inputs:
        parse_error(raw)  # asserts no fragment of either token body in str() and repr()


# ---------------------------------------------------------------------------------------------
# Expiry


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(DEC_1_S, DEC_1, id="seconds-int"),
        pytest.param(DEC_1_MS, DEC_1, id="ms-int"),
        pytest.param(str(DEC_1_S), DEC_1, id="seconds-string"),
        pytest.param(f"  {DEC_1_MS}\n", DEC_1, id="ms-string-padded"),
        pytest.param(DEC_1_S + 0.25, DEC_1 + timedelta(milliseconds=250), id="seconds-float"),
        pytest.param(f"{DEC_1_S}.5", DEC_1 + timedelta(milliseconds=500), id="seconds-float-str"),
        pytest.param(float(DEC_1_MS), DEC_1, id="ms-float"),
        pytest.param(DEC_1_S + 0.0004, DEC_1, id="sub-ms-rounds-down"),
        pytest.param(FACTS_EXPIRES_MS, FACTS_EXPIRES, id="facts-ms"),
        pytest.param("2026-12-01T10:00:00Z", DEC_1, id="iso-z"),
        pytest.param("2026-12-01T12:00:00+02:00", DEC_1, id="iso-offset"),
        pytest.param("2026-12-01T10:00:00", DEC_1, id="iso-naive-is-utc"),
        pytest.param("2026-12-01 10:00:00.000999+00:00", DEC_1, id="iso-us-truncated"),
        pytest.param(" 2026-12-01T10:00:00Z ", DEC_1, id="iso-padded"),
        pytest.param(DEC_1.astimezone(timezone(timedelta(hours=-5))), DEC_1, id="datetime-aware"),
        pytest.param(DEC_1.replace(tzinfo=None), DEC_1, id="datetime-naive-is-utc"),
        pytest.param(None, None, id="null-never-expires"),
        pytest.param(1_577_836_800, datetime(2020, 1, 1, tzinfo=UTC), id="lower-bound-s"),
        pytest.param(1_577_836_800_000, datetime(2020, 1, 1, tzinfo=UTC), id="lower-bound-ms"),
        pytest.param(4_102_444_800, datetime(2100, 1, 1, tzinfo=UTC), id="upper-bound-s"),
        pytest.param("2100-01-01T00:00:00Z", datetime(2100, 1, 1, tzinfo=UTC), id="upper-iso"),
    ],
)
def test_expiry_accepted(value: Any, expected: datetime | None) -> None:
    parsed = expiry_parse(value=value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        pytest.param(
            1_546_300_800, "2019-01-01 00:00:00 UTC, which is before 2020-01-01", id="2019"
        ),
        pytest.param("2019-06-01T00:00:00Z", "2019-06-01 00:00:00 UTC", id="2019-iso"),
        pytest.param(1_577_836_799, "before 2020-01-01", id="just-before-2020"),
        pytest.param(
            4_133_980_800, "2101-01-01 00:00:00 UTC, which is after 2100-01-01", id="2101"
        ),
        pytest.param("2101-01-01T00:00:00Z", "after 2100-01-01", id="2101-iso"),
        pytest.param(4_102_444_801, "after 2100-01-01", id="just-after-2100"),
        pytest.param(-1, "negative", id="negative"),
        pytest.param(-1.5, "negative", id="negative-float"),
        pytest.param("-1795914568", "negative", id="negative-string"),
        pytest.param(0, "1970-01-01 00:00:00 UTC", id="zero"),
        pytest.param(True, "true/false", id="true"),
        pytest.param(False, "true/false", id="false"),
        pytest.param(float("nan"), "not a finite number", id="nan"),
        pytest.param(float("inf"), "not a finite number", id="inf"),
        pytest.param("nan", "neither", id="nan-string"),
        pytest.param("abc", "neither", id="abc"),
        pytest.param("12 34", "neither", id="inner-space"),
        pytest.param("", "is empty", id="empty"),
        pytest.param("   ", "is empty", id="blank"),
        pytest.param([DEC_1_S], "found a list", id="list"),
        pytest.param({"s": 1}, "found an object", id="object"),
        # Either side of the seconds/milliseconds switch: both are out of range, and the
        # message shows which unit was assumed by the date it names.
        pytest.param(99_999_999_999, "5138-", id="just-below-1e11-is-seconds"),
        pytest.param(100_000_000_000, "1973-03-03", id="1e11-is-milliseconds"),
    ],
)
def test_expiry_rejected(value: Any, phrase: str) -> None:
    with pytest.raises(TokenFormatError) as caught:
        expiry_parse(value=value, field="claudeAiOauth.expiresAt")
    assert caught.value.field == "claudeAiOauth.expiresAt"
    assert phrase in caught.value.message
    assert "mix-up" not in caught.value.message


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        pytest.param(DEC_1_MS * 1000, "divided by 1,000 would mean 2026-12-01", id="microseconds"),
        pytest.param(DEC_1_MS * 1_000_000, "divided by 1,000,000 would mean 2026-12", id="ns"),
        pytest.param(DEC_1_S // 1000, "multiplied by 1,000 would mean 2026-12-01", id="s-div-1000"),
    ],
)
def test_expiry_unit_mix_up_is_named(value: int, phrase: str) -> None:
    with pytest.raises(TokenFormatError) as caught:
        expiry_parse(value=value)
    assert caught.value.field == "expires_at"
    assert "seconds/milliseconds mix-up" in caught.value.message
    assert phrase in caught.value.message


def test_expiry_values_a_user_would_type_agree_across_units() -> None:
    rng = random.Random(20261201)
    low, high = 1_577_836_800_000, 4_102_444_800_000
    for _ in range(500):
        ms = rng.randrange(low, high)
        expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
        assert expiry_parse(value=ms) == expected
        assert expiry_parse(value=str(ms)) == expected
        assert expiry_parse(value=expected.isoformat()) == expected
        assert expiry_parse(value=expected.isoformat().replace("+00:00", "Z")) == expected
        seconds = ms // 1000
        assert expiry_parse(value=seconds) == expected.replace(microsecond=0)
        # Float seconds are binary fractions: they may land a millisecond early, never late.
        from_float = expiry_parse(value=seconds + (ms % 1000) / 1000)
        assert from_float is not None
        assert expected - timedelta(milliseconds=1) <= from_float <= expected


# ---------------------------------------------------------------------------------------------
# Rendering the CLI's credentials file


def test_render_produces_the_cli_shape_with_milliseconds() -> None:
    rendered = credentials_file_render(
        access_token=ACCESS,
        refresh_token=REFRESH,
        expires_at=FACTS_EXPIRES,
        scopes=CLI_SCOPES,
        subscription_type="max",
        rate_limit_tier="default_claude_max_20x",
    )
    assert rendered == cli_file()  # docs/claude-cli-contract.md#credentials-file
    assert isinstance(rendered["claudeAiOauth"]["expiresAt"], int)


def test_render_of_a_static_token_leaves_out_what_would_make_the_cli_refresh() -> None:
    rendered = credentials_file_render(
        access_token=SETUP_TOKEN, refresh_token="", expires_at=None, scopes=INFERENCE_ONLY
    )
    # The minimal file the facts say the CLI uses as is, never refreshing.
    assert rendered == {
        "claudeAiOauth": {
            "accessToken": SETUP_TOKEN,
            "expiresAt": None,
            "scopes": ["user:inference"],
            "subscriptionType": None,
        }
    }


@pytest.mark.parametrize("scopes", [(), []])
def test_render_without_scopes_writes_the_one_the_cli_needs(scopes: Any) -> None:
    # A credential pasted without scopes: the CLI refuses a file without user:inference
    # (docs/claude-cli-contract.md#credentials-file), so that one, and only that one, is written.
    rendered = credentials_file_render(
        access_token=SETUP_TOKEN, refresh_token="", expires_at=None, scopes=scopes
    )
    assert rendered["claudeAiOauth"]["scopes"] == ["user:inference"]


@pytest.mark.parametrize(
    ("kwargs", "field", "phrase"),
    [
        pytest.param({"scopes": ["user:profile"]}, "scopes", "Not logged in", id="no-inference"),
        pytest.param({"scopes": "user:inference"}, "scopes", "list", id="scopes-as-string"),
        pytest.param({"expires_at": DEC_1.replace(tzinfo=None)}, "expiresAt", "aware", id="naive"),
        pytest.param({"access_token": ""}, "accessToken", "empty", id="no-access-token"),
        pytest.param({"access_token": "a b"}, "accessToken", "space", id="bad-access-token"),
        pytest.param({"refresh_token": "a\nb"}, "refreshToken", "line break", id="bad-refresh"),
    ],
)
def test_render_rejects(kwargs: dict[str, Any], field: str, phrase: str) -> None:
    arguments: dict[str, Any] = {
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "expires_at": DEC_1,
        "scopes": CLI_SCOPES,
    } | kwargs
    with pytest.raises(ValueError, match=phrase) as caught:
        credentials_file_render(**arguments)
    assert isinstance(caught.value, TokenFormatError)
    assert caught.value.field == field
    with pytest.raises(ValueError, match=phrase):
        credentials_file_dumps(**arguments)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(json.dumps(flat()), id="flat"),
        pytest.param(flat(refresh_token=None, expires_at=None), id="flat-static"),
        pytest.param(flat(expires_at=DEC_1_S + 0.123), id="flat-float-seconds"),
        pytest.param(flat(scope="user:inference user:file_upload"), id="flat-scope"),
        pytest.param(json.dumps(cli_file()), id="cli"),
        pytest.param(cli_file(rateLimitTier=None, subscriptionType="pro"), id="cli-pro"),
        pytest.param(cli_file(refreshToken=None, expiresAt=None), id="cli-static"),
        pytest.param(SETUP_TOKEN, id="setup-token"),
    ],
)
def test_render_round_trip(raw: Any) -> None:
    parsed = credential_input_parse(raw=raw)
    text = credentials_file_dumps(
        access_token=parsed.access_token,
        refresh_token=parsed.refresh_token,
        expires_at=parsed.expires_at,
        scopes=parsed.scopes,
        subscription_type=parsed.subscription_type,
        rate_limit_tier=parsed.rate_limit_tier,
    )
    written = json.loads(text)
    inner = written["claudeAiOauth"]
    assert set(written) == {"claudeAiOauth"}  # never the flat shape
    assert not {"access_token", "refresh_token", "expires_at", "token_type"} & set(inner)
    if parsed.expires_at is None:
        assert inner["expiresAt"] is None
    else:
        assert inner["expiresAt"] == (parsed.expires_at - EPOCH) // timedelta(milliseconds=1)
        assert inner["expiresAt"] > 10**12  # milliseconds, not seconds
    assert "user:inference" in inner["scopes"]
    assert ("refreshToken" in inner) == (parsed.kind is CredentialKind.REFRESHABLE)

    again = credential_input_parse(raw=text)
    assert again.input_format is InputFormat.CLI
    # What had no scopes comes back with the one the file must name; all else is the same.
    assert again.scopes == (parsed.scopes or INFERENCE_ONLY)
    assert dataclasses.replace(again, input_format=parsed.input_format, scopes=()) == (
        dataclasses.replace(parsed, scopes=())
    )


# ---------------------------------------------------------------------------------------------
# Nothing secret in repr, str or pickles of what the module returns


def test_repr_of_parsed_credential_hides_tokens() -> None:
    parsed = credential_input_parse(raw=cli_file())
    for text in (repr(parsed), str(parsed), f"{parsed}", repr([parsed])):
        assert_no_secret(text)
        assert "<redacted>" in text
        assert "refreshable" in text
        assert "2026-11-29" in text
    static = credential_input_parse(raw=SETUP_TOKEN)
    assert "refresh_token=''" in repr(static)


def test_error_str_and_pickle() -> None:
    error = TokenFormatError("Expected text.", field="claudeAiOauth.accessToken")
    assert isinstance(error, ValueError)
    assert str(error) == "claudeAiOauth.accessToken: Expected text."
    assert str(TokenFormatError("Whole input is wrong.")) == "Whole input is wrong."
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (type(copy), copy.field, copy.message) == (TokenFormatError, error.field, error.message)
