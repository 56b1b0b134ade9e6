"""Expiries in words (common.humanize), as the settings page shows them."""

from datetime import UTC, datetime, timedelta

import pytest

from common.humanize import duration_words, expiry_words

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


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (None, ""),
        (-1, ""),
        (0, "0 s"),
        (0.4, "0.4 s"),
        (22.91, "23 s"),
        (27, "27 s"),
        (60, "1 min"),
        (672, "11 min 12 s"),
        (3600, "1 h"),
        (3600 + 5 * 60 + 7, "1 h 5 min"),
        (86_400 * 3 + 4 * 3600, "3 d 4 h"),
        (86_400 * 2, "2 d"),
    ],
)
def test_durations_in_human_units(seconds, words):
    assert duration_words(seconds) == words
