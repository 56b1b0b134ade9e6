"""Hostile pasted credentials: huge numbers, dates at the edge of what Python can hold,
and duplicate names. Each is refused with TokenFormatError and a message, never another error."""

from __future__ import annotations

import json

import pytest

from oauth_tokens.formats import (
    MAX_NUMBER_DIGITS,
    TokenFormatError,
    credential_input_parse,
    expiry_parse,
)

ACCESS = "sk-ant-oat01-hostile-test-access-token-0123456789"
REFRESH = "sk-ant-ort01-hostile-test-refresh-token-0123456789"
HUGE = "9" * 5000


def t(template: str, *values: str) -> str:
    """Fill {1}, {2}... in a JSON template (str.format would trip over JSON's braces)."""
    for index, value in enumerate(values, start=1):
        template = template.replace("{" + str(index) + "}", value)
    return template


def parse_error(raw: str) -> TokenFormatError:
    with pytest.raises(TokenFormatError) as info:
        credential_input_parse(raw=raw)
    assert info.value.message
    return info.value


def cli(inner_json: str) -> str:
    return '{"claudeAiOauth": {' + inner_json + "}}"


@pytest.mark.parametrize(
    "raw",
    [
        t('{"access_token": "{1}", "expires_at": {2}}', ACCESS, HUGE),
        t('{"access_token": "{1}", "unrelated": {2}}', ACCESS, HUGE),
        cli(t('"accessToken": "{1}", "expiresAt": {2}', ACCESS, HUGE)),
        cli(t('"accessToken": "{1}", "expiresAt": -{2}', ACCESS, HUGE)),
        t('{"claudeAiOauth": null, "mcpOAuth": [{1}]}', HUGE),
    ],
)
def test_a_5000_digit_json_integer_is_refused_with_a_message(raw: str) -> None:
    error = parse_error(raw)
    assert "5,000 digits" in error.message


@pytest.mark.parametrize("digits", [HUGE, "1" * (MAX_NUMBER_DIGITS + 1)])
def test_an_expiry_string_of_thousands_of_digits_names_the_field(digits: str) -> None:
    error = parse_error(cli(t('"accessToken": "{1}", "expiresAt": "{2}"', ACCESS, digits)))
    assert error.field == "claudeAiOauth.expiresAt"
    assert "digits" in error.message
    assert "2100-01-01" in error.message


def test_a_negative_expiry_string_of_thousands_of_digits_is_negative() -> None:
    error = parse_error(cli(t('"accessToken": "{1}", "expiresAt": "-{2}"', ACCESS, HUGE)))
    assert error.field == "claudeAiOauth.expiresAt"
    assert "negative" in error.message


def test_numbers_up_to_the_digit_limit_still_parse() -> None:
    # A real millisecond expiry is 13 digits; an unrelated long number elsewhere is harmless.
    raw = json.dumps(
        {
            "claudeAiOauth": {"accessToken": ACCESS, "expiresAt": 1893456000000},
            "other": int("9" * MAX_NUMBER_DIGITS),
        }
    )
    assert credential_input_parse(raw=raw).expires_at is not None


@pytest.mark.parametrize(
    ("iso", "side"),
    [
        ("9999-12-31T23:59:59-01:00", "after"),
        ("9999-12-31T23:00:00-23:59", "after"),
        ("0001-01-01T00:00:00+01:00", "before"),
        ("0001-01-01T00:30:00+23:59", "before"),
    ],
)
def test_dates_that_overflow_in_utc_are_refused_with_the_field(iso: str, side: str) -> None:
    error = parse_error(cli(t('"accessToken": "{1}", "expiresAt": "{2}"', ACCESS, iso)))
    assert error.field == "claudeAiOauth.expiresAt"
    assert f"{side} 2" in error.message
    # The same through the flat format and the function itself.
    assert parse_error(json.dumps({"access_token": ACCESS, "expires_at": iso})).field == (
        "expires_at"
    )
    with pytest.raises(TokenFormatError):
        expiry_parse(value=iso)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (t('{"access_token": "{1}", "access_token": "{2}"}', ACCESS, ACCESS), "access_token"),
        (
            t(
                '{"access_token": "{1}", "refresh_token": "{2}", "refresh_token": "{3}"}',
                ACCESS,
                REFRESH,
                REFRESH + "x",
            ),
            "refresh_token",
        ),
        (cli(t('"accessToken": "{1}", "accessToken": "{2}"', ACCESS, ACCESS + "y")), "accessToken"),
        (cli(t('"accessToken": "{1}", "expiresAt": 1, "expiresAt": null', ACCESS)), "expiresAt"),
        (
            t(
                '{"claudeAiOauth": {"accessToken": "{1}"}, '
                '"claudeAiOauth": {"accessToken": "{2}"}}',
                ACCESS,
                ACCESS,
            ),
            "claudeAiOauth",
        ),
        # The third format: a bare setup token as a JSON string has no names, so an object
        # that holds one twice under an unknown name is refused without quoting the name.
        (t('{"{1}": 1, "{2}": 2}', ACCESS, ACCESS), None),
    ],
)
def test_duplicate_names_in_pasted_credentials_are_refused(raw: str, field: str | None) -> None:
    error = parse_error(raw)
    assert error.field == field
    assert "twice" in error.message
    assert ACCESS not in error.message
    assert REFRESH not in error.message
