"""Text from a container, made fit to keep (what a database column can hold) and to show (no
character that hides, reorders or restyles what is around it)."""

import functools
import re

# Lone surrogates: JSON's "\ud800" escapes decode to them, and no UTF-8 text can hold them.
_SURROGATES = re.compile("[\ud800-\udfff]")


def text_storable(text: str) -> str:
    """``text`` as any text column takes it: no NULs (PostgreSQL refuses them), and each lone
    surrogate as U+FFFD, as undecodable bytes are."""
    return _SURROGATES.sub("\ufffd", text.replace("\x00", ""))


def text_visible(text: str, *, keep: str = "") -> str:
    """``text`` with every character that is not printable (controls; format characters, among
    them the bidi overrides, embeddings, isolates and marks; line and paragraph separators;
    lone surrogates) as a visible escape, ``\\x1b`` or ``\\u202e``: none can reorder, hide or
    restyle what is shown. The characters of ``keep`` (a page's newlines and tabs) stay as they
    are. Applying it twice changes nothing."""
    bare = text
    for char in keep:  # most text has nothing to escape: found out in a few quick passes
        bare = bare.replace(char, "")
    if bare.isprintable():
        return text
    return _maybe_hidden(keep).sub(lambda run: _run_visible(run.group()), text)


@functools.cache
def _maybe_hidden(keep: str) -> re.Pattern[str]:
    """Runs of what may not be printable: all but printable ASCII and ``keep``."""
    return re.compile(f"[^\\x20-\\x7e{re.escape(keep)}]+")


def _run_visible(run: str) -> str:
    """A run _maybe_hidden found, which never holds a ``keep`` character."""
    if run.isprintable():
        return run
    return "".join(c if c.isprintable() else _escape(c) for c in run)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
