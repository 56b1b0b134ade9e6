"""Someone else's words in a pull request's Markdown: quoted, and unable to act on GitHub or to
reorder what GitHub shows around them.

GitHub acts on text it finds in a description: ``@user`` and ``@org/team`` notify people,
``#12``, ``GH-12``, ``owner/repo#12`` and issue URLs link issues (and leave a mark in them), and
a closing keyword before such a reference (``Fixes #12``) closes the issue when the pull request
is merged. A zero-width space after the ``@``, inside the reference and inside the keyword
keeps every word readable while none of those patterns matches any more.
"""

from __future__ import annotations

import re

from common.text import text_visible

ZERO_WIDTH_SPACE = "\u200b"

_REFERENCE_START = r"(?:#|gh-|[\w.-]+/[\w.-]+#|https?://\S+/(?:issues|pull)/)"
# A closing keyword (close, fix, resolve and their -s/-d forms) before a reference: the
# keyword is split after its first letter.
_CLOSING = re.compile(
    rf"\b([cfr])((?:lose[sd]?|ix(?:e[sd])?|esolve[sd]?)\s*:?\s*{_REFERENCE_START}\S*\d)",
    re.IGNORECASE,
)
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")  # @user, @org/team
_HASH_NUMBER = re.compile(r"#(?=\s*\d)")  # #12, owner/repo#12
_GH_NUMBER = re.compile(r"\b(gh)(?=-\d)", re.IGNORECASE)  # GH-12
# The "&" of an HTML character reference (CommonMark: named, decimal or hexadecimal).
_CHARACTER_REFERENCE = re.compile(
    r"&(?=[A-Za-z][A-Za-z0-9]{0,31};|#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};)"
)
# The "<" of an HTML tag that sets the direction of what it holds.
_DIRECTION_TAG = re.compile(r"<(?=/?bd[io]\b|[A-Za-z][^<>]*\bdir\s*=)", re.IGNORECASE)
_ISSUE_URL = re.compile(r"(https?)(?=://\S+/(?:issues|pull)/\d)", re.IGNORECASE)


def github_references_defuse(text: str) -> str:
    """``text`` with every mention, issue reference and closing keyword broken by a zero-width
    space: it reads the same and makes GitHub notify, link and close nothing."""
    zw = ZERO_WIDTH_SPACE
    text = _CLOSING.sub(lambda m: f"{m[1]}{zw}{m[2]}", text)
    text = _MENTION.sub("@" + zw, text)
    text = _HASH_NUMBER.sub("#" + zw, text)
    text = _GH_NUMBER.sub(lambda m: m[1] + zw, text)
    return _ISSUE_URL.sub(lambda m: m[1] + zw, text)


def blockquote(text: str) -> str:
    """``text`` as a Markdown blockquote: every line marked, so nothing in it ends the quote."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


def agent_words_quote(text: str) -> str:
    """An agent's words as a blockquote that can act on nothing and hide nothing: direction and
    other invisible characters as visible escapes (before the defusing adds its own), character
    references shown as typed (``&#x202e;`` or ``&#x40;`` would render as the character they
    name), and so are HTML tags that set a direction (``<bdo>``, ``dir=``), which GitHub's
    sanitizer keeps; every reference defused, every line quoted (a CR ends a line like LF: the
    quote marks it too)."""
    shown = _CHARACTER_REFERENCE.sub("&amp;", text_visible(text, keep="\t\n\r"))
    return blockquote(github_references_defuse(_DIRECTION_TAG.sub("&lt;", shown)))
