"""Expiries in words (common.humanize), as the settings page shows them."""

from datetime import UTC, datetime, timedelta

import pytest

from common.humanize import expiry_words

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires_at", "words"),
    [
        (None, "never (no expiry given)"),
        (NOW + timedelta(hours=2, minutes=5), "in 2\xa0hours, 5\xa0minutes (2026-06-01 14:05 UTC)"),
        (NOW - timedelta(days=3), "expired 3\xa0days ago (2026-05-29 12:00 UTC)"),
    ],
)
def test_expiry_in_words(expires_at, words):
    assert expiry_words(expires_at=expires_at, now=NOW) == words
