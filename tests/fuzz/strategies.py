"""Hypothesis strategies for what a hostile user can paste: JSON text built from fragments (so
numbers of thousands of digits, escapes such as a lone surrogate and repeated names can appear,
which json.dumps could not write), near-miss tokens, URLs and branch names."""

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from oauth_tokens.formats import API_KEY_PREFIX, REFRESH_TOKEN_PREFIX, SETUP_TOKEN_PREFIX

# Any text, surrogates included (JSON escapes produce them; form posts cannot carry them).
any_text = st.text(max_size=200)
form_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)

token_body = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.sampled_from(" \t\n\u00a0\u200b“"),
    min_size=0,
    max_size=120,
)
tokens = st.one_of(
    st.builds(
        lambda p, b: p + b, st.sampled_from(["sk-ant-oat01-", SETUP_TOKEN_PREFIX]), token_body
    ),
    st.builds(lambda b: REFRESH_TOKEN_PREFIX + "01-" + b, token_body),
    st.builds(lambda b: API_KEY_PREFIX + "03-" + b, token_body),
    token_body,
)

digits = st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n)
number_text = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(lambda sign, d: sign + d, st.sampled_from(["", "-"]), digits),
    st.builds(lambda d, e: f"{d}e{e}", st.integers(0, 99), st.integers(-999, 999)),
)
offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).map(lambda delta: timezone(timedelta(minutes=delta // timedelta(minutes=1))))
datetimes = st.datetimes(timezones=st.none() | st.just(UTC) | offsets)
iso_text = datetimes.map(lambda moment: moment.isoformat())
expiry_text = st.one_of(
    number_text,
    digits,
    iso_text,
    st.sampled_from(
        ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2030-01-01", "nan", "inf"]
    ),
    any_text,
)
expiry_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    datetimes,
    expiry_text,
)

CREDENTIAL_NAMES = [
    "access_token",
    "refresh_token",
    "expires_at",
    "expires_in",
    "token_type",
    "scope",
    "scopes",
    "claudeAiOauth",
    "accessToken",
    "refreshToken",
    "expiresAt",
    "subscriptionType",
    "rateLimitTier",
    "mcpOAuth",
]
ENV_NAMES = ["GITHUB_TOKEN", "NODE_ENV", "A", "ANTHROPIC_API_KEY", "HOME", "1BAD", "MY-VAR", ""]


def _string_literal(text: str) -> str:
    return json.dumps(text)  # ensure_ascii: a surrogate becomes the escape \\udXXX


def json_text(names: list[str], *, max_leaves: int = 12) -> st.SearchStrategy[str]:
    """JSON documents as text, names drawn mostly from ``names``."""
    leaves = st.one_of(
        st.sampled_from(["null", "true", "false"]),
        number_text,
        st.builds(_string_literal, any_text),
        st.builds(_string_literal, tokens),
        st.builds(_string_literal, expiry_text),
        st.builds(_string_literal, datetimes.map(lambda m: m.isoformat())),
    )
    keys = st.sampled_from(names) | any_text

    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
            st.lists(st.tuples(keys, children), max_size=6).map(
                lambda pairs: "{" + ",".join(f"{_string_literal(k)}:{v}" for k, v in pairs) + "}"
            ),
        )

    return st.recursive(leaves, extend, max_leaves=max_leaves)


def _cli_document(inner: list[tuple[str, str]]) -> str:
    body = ",".join(f"{_string_literal(k)}:{v}" for k, v in inner)
    return '{"claudeAiOauth": {' + body + "}}"


_credential_values = st.one_of(
    st.builds(_string_literal, tokens),
    number_text,
    st.builds(_string_literal, expiry_text),
    st.sampled_from(['["user:inference"]', '["user:profile"]', "null", '"max"', "[1]", "{}"]),
)
cli_documents = st.lists(
    st.tuples(st.sampled_from(CREDENTIAL_NAMES), _credential_values), max_size=8
).map(_cli_document)
flat_documents = st.lists(
    st.tuples(st.sampled_from(CREDENTIAL_NAMES), _credential_values), max_size=8
).map(lambda pairs: "{" + ",".join(f"{_string_literal(k)}:{v}" for k, v in pairs) + "}")
bare_tokens = st.one_of(tokens, tokens.map(_string_literal), tokens.map(lambda t: f"  {t}\n"))

pasted_credentials = st.one_of(
    cli_documents, flat_documents, bare_tokens, json_text(CREDENTIAL_NAMES), any_text
)

env_documents = st.one_of(
    st.lists(
        st.tuples(
            st.sampled_from(ENV_NAMES) | any_text,
            st.builds(_string_literal, any_text) | number_text | st.just("null"),
        ),
        max_size=8,
    ).map(lambda pairs: "{" + ",".join(f"{_string_literal(k)}:{v}" for k, v in pairs) + "}"),
    json_text(ENV_NAMES),
    any_text,
)

repo_urls = st.one_of(
    any_text,
    st.builds(
        lambda scheme, host, path, tail: f"{scheme}://{host}/{path}{tail}",
        st.sampled_from(["https", "http", "file", "ssh", "git", "HTTPS", ""]),
        st.sampled_from(
            [
                "github.com",
                "localhost",
                "user:pw@github.com",
                "[::1]",
                "[::1",
                "host:99999",
                "h:x",
                "",
            ]
        )
        | any_text,
        any_text,
        st.sampled_from(["", "?q=1", "#f", ".git", "/../../etc"]),
    ),
)
branch_names = st.one_of(
    any_text,
    st.lists(
        st.sampled_from(["main", "feature", ".", "..", "-", "@{", "/", ".lock", "x", "$(id)"]),
        max_size=6,
    ).map("".join),
)

# A moment that is certainly in the past for the property tests that need "now".
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)

# URL-shaped text whose host is what breaks resolvers: empty labels (a..b, .a), labels over
# 63 characters, names over 253, non-ASCII, brackets, odd ports.
_label = st.one_of(
    st.text(alphabet="abcxyz019-_", min_size=0, max_size=8),
    st.integers(min_value=60, max_value=70).map(lambda n: "a" * n),
    st.text(max_size=6),
)
url_hosts = st.one_of(
    st.lists(_label, min_size=1, max_size=6).map(".".join),
    st.integers(min_value=250, max_value=260).map(lambda n: ("a." * n)[:n] + "com"),
    st.sampled_from(
        ["[::1]", "[::1", "[fe80::1%25eth0]", "127.1", "0x7f.0.0.1", "localhost", "[github.com]"]
    ),
)
url_ish = st.one_of(
    any_text,
    st.builds(
        lambda scheme, user, host, port, path: f"{scheme}://{user}{host}{port}/{path}",
        st.sampled_from(["https", "http", "HTTPS", "file", "ftp", ""]),
        st.sampled_from(["", "user@", "user:pw@", "@"]),
        url_hosts,
        st.sampled_from(["", ":", ":0", ":443", ":65536", ":-1", ":x", ":٣"]),
        st.sampled_from(["hook", "a/b.git", "", "x?q=1", "x#f", "services/T0/B0/xyz"]),
    ),
)
