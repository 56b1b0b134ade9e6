"""The mention in a comment's Markdown: the first `@<name>` that is the commenter's own words.

A mention inside a quote (`> ` lines, or `<blockquote>`), a fenced or indented code block, an
inline code span, `<code>`/`<pre>` or an HTML comment is someone else's words or talk about the
runner, not a request: such text is masked (blanked, keeping every offset) before looking. Quotes
and code inside list items count as well, read at the item's indentation. The prompt is the
original text after the mention, so it may itself quote or contain code.
"""

import re

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_QUOTE = re.compile(r"^ {0,3}>")
_INDENTED_CODE = re.compile(r"^(?: {4}| {0,3}\t)")
# A list item's marker and the spaces after it (1 to 4; with more, the item's text starts one
# space after the marker and the rest indents a code block).
_LIST_ITEM = re.compile(r"^ {0,3}(?:[-+*]|[0-9]{1,9}[.)])(?: {1,4}(?=\S)| |$)")
# What ends a paragraph rather than continuing it: a list item, a quote, a fence.
_BLOCK_START = re.compile(rf"{_LIST_ITEM.pattern}|{_QUOTE.pattern}|^ {{0,3}}(?:`{{3,}}|~{{3,}})")
_BACKTICKS = re.compile(r"`+")
# Rendered hidden or as code or a quote; the tags' case does not matter to GitHub.
_HTML_MASKED = re.compile(
    r"<!--.*?(?:-->|\Z)|<(code|pre|blockquote|kbd|samp|tt)\b[^>]*>.*?(?:</\1\s*>|\Z)",
    re.IGNORECASE | re.DOTALL,
)


def mention_prompt(*, text: str, name: str) -> str | None:
    """What follows the first mention of ``name`` in the commenter's own words (stripped), or
    None when there is none."""
    pattern = rf"(?<![\w@/-])@{re.escape(name)}(?![\w-])"
    found = re.search(pattern, text_masked(text=text), re.IGNORECASE)
    return None if found is None else text[found.end() :].strip()


def text_masked(*, text: str) -> str:
    """``text`` with quotes, code and HTML comments blanked to spaces (line breaks kept), so
    offsets in it are offsets in ``text``."""
    lines = text.splitlines(keepends=True)
    masked = [False] * len(lines)
    fence = ""  # the open fence's characters, while inside one
    fence_items = 0  # how many list items the open fence is inside
    items: list[int] = []  # the open list items' text columns, innermost last
    after = "blank"  # what the previous line was: blank, text, quote or code
    for index, line in enumerate(lines):
        # Lines are masked whole, so they are classified on a copy with tabs at their stops.
        content = line.rstrip("\r\n").expandtabs(4)
        blank = not content.strip()
        if not blank:
            content = _items_closed(content, items, lazy=after == "text")
            if fence and len(items) < fence_items:
                fence = ""  # the list item it was in has ended, and the fence with it
            if not fence and (opened := _items_opened(content, items)) != content:
                content, after = opened, "blank"  # an item's text starts a block of its own
                blank = not content.strip()
        if fence:
            masked[index] = True
            closer = content.strip()
            indent = len(content) - len(content.lstrip(" "))
            if indent <= 3 and closer.startswith(fence) and not closer.strip(fence[0]):
                fence = ""
            continue
        opening = _FENCE_OPEN.match(content)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence, masked[index], after = opening.group(1), True, "code"
            fence_items = len(items)
            continue
        if _QUOTE.match(content) or (after == "quote" and not blank):
            # A line right after a quoted one continues the quote (a lazy continuation).
            masked[index], after = True, "quote"
            continue
        if not blank and after in ("blank", "code") and _INDENTED_CODE.match(content):
            masked[index], after = True, "code"
            continue
        after = "blank" if blank else "text"
    blanked = [_blank(line) if hidden else line for line, hidden in zip(lines, masked, strict=True)]
    return _html_masked(_code_spans_masked("".join(blanked)))


def _items_closed(content: str, items: list[int], *, lazy: bool) -> str:
    """A non-blank line's text inside the open list items it is indented into; the items it is
    indented less than end (``items`` loses them), unless the line continues a paragraph
    (``lazy``: one is open) and starts nothing that would end it."""
    indent = len(content) - len(content.lstrip(" "))
    inside = len(items)
    while inside and indent < items[inside - 1]:
        inside -= 1
    text = content[items[inside - 1] :] if inside else content
    if inside < len(items) and lazy and not _BLOCK_START.match(text):
        return content.lstrip(" ")
    del items[inside:]
    return text


def _items_opened(text: str, items: list[int]) -> str:
    """``text`` after the list markers that start it (``items`` gains their text columns)."""
    while (marker := _LIST_ITEM.match(text)) is not None:
        items.append((items[-1] if items else 0) + marker.end())
        text = text[marker.end() :]
    return text


def _blank(text: str) -> str:
    return re.sub(r"[^\r\n]", " ", text)


def _code_spans_masked(text: str) -> str:
    """Inline code: a run of backticks up to the next run of the same length, within one
    paragraph; a run with no partner is literal backticks."""
    paragraphs = re.split(r"(\n[ \t\r]*\n)", text)
    return "".join(_paragraph_spans_masked(part) for part in paragraphs)


def _paragraph_spans_masked(text: str) -> str:
    out, position = [], 0
    while (opener := _BACKTICKS.search(text, position)) is not None:
        run = opener.group()
        closer = re.compile(rf"(?<!`){run}(?!`)").search(text, opener.end())
        if closer is None:
            out.append(text[position : opener.end()])
            position = opener.end()
            continue
        out.append(text[position : opener.start()] + _blank(text[opener.start() : closer.end()]))
        position = closer.end()
    return "".join(out) + text[position:]


def _html_masked(text: str) -> str:
    return _HTML_MASKED.sub(lambda found: _blank(found.group()), text)
