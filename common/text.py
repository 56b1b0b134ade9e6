"""Text from a container, made fit to keep: what a database column can hold."""

import re

# Lone surrogates: JSON's "\ud800" escapes decode to them, and no UTF-8 text can hold them.
_SURROGATES = re.compile("[\ud800-\udfff]")


def text_storable(text: str) -> str:
    """``text`` as any text column takes it: no NULs (PostgreSQL refuses them), and each lone
    surrogate as U+FFFD, as undecodable bytes are."""
    return _SURROGATES.sub("\ufffd", text.replace("\x00", ""))
