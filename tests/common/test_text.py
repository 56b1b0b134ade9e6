"""Text from a container on a page: every character that could reorder, hide or restyle what is
shown becomes a visible escape (text_visible), and what a database column cannot hold is left
out (text_storable)."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.templatetags.text_marks import visible
from common.text import text_storable, text_visible

# The bidi embeddings and overrides, isolates and marks; zero-width and other format characters.
HIDDEN = [
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
    "\u200e",
    "\u200f",
    "\u061c",  # Arabic letter mark
    "\u200b",  # zero-width space
    "\u00ad",  # soft hyphen
    "\ufeff",
    "\u2028",  # line separator
    "\x1b",
    "\r",
]


@pytest.mark.parametrize("char", HIDDEN, ids=lambda c: f"U+{ord(c):04X}")
def test_each_hidden_character_is_shown_as_its_escape(char):
    shown = visible(f"invoice{char}gpj.sh")
    assert char not in shown
    assert shown in (f"invoice\\x{ord(char):02x}gpj.sh", f"invoice\\u{ord(char):04x}gpj.sh")


def test_lines_tabs_and_any_script_stay_as_they_are():
    text = "שלום עולם\tمرحبا\n— naïve café ✓ 日本語 👍\n"  # noqa: RUF001  words as agents write them
    assert visible(text) == text


@given(text=st.text(st.characters(exclude_categories=())), keep=st.sampled_from(["", "\t\n"]))
def test_nothing_unprintable_is_left_and_twice_is_once(text, keep):
    shown = text_visible(text, keep=keep)
    assert all(c.isprintable() or c in keep for c in shown)
    assert text_visible(shown, keep=keep) == shown
    assert all(unicodedata.category(c) != "Cf" for c in shown)


def test_what_a_column_cannot_hold_is_left_out_or_replaced():
    assert text_storable("a\x00b\ud800c") == "ab\ufffdc"
    assert text_storable("\U0001f44d") == "\U0001f44d"
